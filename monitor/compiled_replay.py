"""A replay's engine loop, compiled (native/engine, Rust): the lines decoded and decided as `monitor.engine.Engine`
decides them, then the state handed back to a Python `Engine`, which the report reads as it reads any engine.

The Python engine is the reference: tests/property/test_compiled_engine.py holds the two together (the same report
and pipeline counts on arbitrary streams with disorder, duplicates, reopens and priority changes). What the compiled
loop asks of Python: lines its decoder declines (`decode_event` decides and words the rejection), a business
calendar's arithmetic, the calendar periods of a UTC day (once per day and zone), probes (the uptime ledgers), and
the wording of a refusal. `SLAMON_ENGINE=python` runs the reference instead.

The hand-back is what a report reads, not a whole engine: tickets with an open clock or orphan events (a report
walks only those), every call still held, the ledgers, statistics and watermarks; not the dedupe ids nor the final
tickets, so the engine handed back answers questions and advances time, but is not fed further events.
"""

from __future__ import annotations

import gc
import heapq
import sys
from collections import Counter
from collections.abc import Iterable
from itertools import islice

from monitor import engine as engine_module
from monitor.calendar import AlwaysOpen
from monitor.calls import CallState
from monitor.compiled import compiled_module
from monitor.contracts import CallSla, Contracts, Rolling
from monitor.engine import CallItem, ClientModel, Engine, TicketItem, engine_error, expired_dropped, expired_final, late
from monitor.events import Rejection, TicketEvent, decode_event, ticket_event_of
from monitor.ledger import Contribution, Tally
from monitor.periods import _windows_of_utc_day
from monitor.sketch import _LOG_GAMMA, LogSketch
from monitor.tickets import Clock, TicketState

_native, IN_USE = compiled_module("monitor._engine", "SLAMON_ENGINE")
CHUNK_LINES = 4096  # lines per call into the compiled loop


def usable(engine: Engine | None) -> bool:
    """The compiled loop replaces a replay's engine: a plain one (None: the replay makes it), or a fresh engine of a
    class that says the loop keeps what it keeps (`compiled_review`: `monitor.review.groups.ReviewEngine`). An engine
    passed otherwise is fed by the Python loop (a caller may read every ticket it holds)."""
    if not IN_USE:
        return False
    return engine is None or (getattr(type(engine), "compiled_review", False) and engine.now_us < 0
                              and not engine.tickets)


def replay_engine(lines: Iterable, contracts: Contracts, at_us: int | None, tally,
                  shell: Engine | None = None) -> Engine:
    """Feed every line (numbered from 1) to the compiled loop; the Python engine it hands back (`shell`, or a new
    `Engine`), and `tally` (a `monitor.replay.ReplayTally`) filled as `monitor.replay.ingest_lines` fills it."""
    loop = CompiledLoop(contracts, tally, shell)
    numbered = iter(lines)
    first = 1
    while chunk := list(islice(numbered, CHUNK_LINES)):
        tally.after_at += loop.native.feed(chunk, first, at_us)
        first += len(chunk)
    tally.lines = first - 1
    return loop.engine()


class CompiledLoop:
    """The compiled loop and the Python engine it hands its state back to; refusals are worded and counted in
    `tally` as the Python loop does."""

    def __init__(self, contracts: Contracts, tally, shell: Engine | None = None) -> None:
        self.shell = shell = Engine(contracts) if shell is None else shell
        clients = contracts.clients

        def fallback(number: int, line):
            event = decode_event(line, clients)
            if isinstance(event, Rejection):
                tally.reject(number, event)
                return None
            return event

        def refuse(number: int, reason: str, event_id: str, client: str, ticket_id: str | None, a: int,
                   b: int) -> None:
            if reason == "late":
                rejection = late(a, b, event_id, client)
            elif reason == "expired_dropped":
                rejection = expired_dropped(ticket_id, event_id, client)
            else:
                rejection = expired_final(ticket_id, a, event_id, client)
            tally.reject(number, rejection)

        def error(number: int, exc: BaseException, event_id: str, client: str) -> None:
            tally.reject(number, engine_error(exc, event_id, client))

        def fold_probes(horizons: dict[str, int], now_us: int) -> None:
            shell.now_us = now_us
            shell._fold_probes(horizons)

        self.native = _native.EngineLoop(engine_spec(shell, fallback=fallback, refuse=refuse, engine_error=error,
                                                     fold_probes=fold_probes))

    def engine(self) -> Engine:
        """The Python engine with the compiled loop's state (call once, after the last line)."""
        collecting = gc.isenabled()
        gc.disable()  # as a restore (monitor.engine_state): only long-lived objects are made; a collection finds none
        try:
            self.native.hand_back(Tally, HandBack(self.shell))
        finally:
            if collecting:
                gc.enable()
        return self.shell


def engine_spec(shell: Engine, **callbacks) -> dict:
    """The contracts as the compiled loop reads them: clients sorted by name (the deadline heap's tie order),
    ledgers in the engine's order (a contribution names its ledger by index)."""
    index = {key: i for i, key in enumerate(shell.ledgers)}
    names = sorted(shell.clients)
    client_index = {name: i for i, name in enumerate(names)}
    ticket_sla = {(name, s.name): i for name, model in shell.clients.items() for i, s in enumerate(model.ticket_slas)}
    calls = {(name, s.name) for name, model in shell.clients.items() for s in model.call_slas}
    return {
        "clients": [_client_spec(shell.clients[name], index) for name in names],
        "ledgers": [{"period": None if isinstance(lg.period, Rolling) else lg.period, "tz": lg.tz,
                     "rolling_us": lg.period.rolling if isinstance(lg.period, Rolling) else 0,
                     "list_breaches": lg.list_breaches, "client": client_index[key[0]], "sla": key[1],
                     "ticket_sla": ticket_sla.get(key), "calls": key in calls, **_sla_facts(shell, key)}
                    for key, lg in shell.ledgers.items()],
        "review": getattr(type(shell), "compiled_review", False),
        "windows_of_day": _windows_of_utc_day,
        "compact_every": engine_module.COMPACT_EVERY,  # read at each replay: a test may shorten them for both
        "evict_calls_every": engine_module.EVICT_CALLS_EVERY,
        "log_gamma": _LOG_GAMMA,
        **callbacks,
    }


def _sla_facts(shell: Engine, key: tuple[str, str]) -> dict:
    """What a worker's SLA events say of a ledger's SLA (`streams.partition_engine.SlaFacts`)."""
    client, name = key
    sla = next(s for s in shell.contracts.clients[client].slas if s.name == name)
    is_call = isinstance(sla, CallSla)
    return {"sla_kind": sla.kind, "call_within": sla.answered_within_us if is_call else None,
            "call_handle": is_call and sla.mean_of == "handle"}


def _client_spec(model: ClientModel, index: dict[tuple[str, str], int]) -> dict:
    name = model.name
    return {
        "name": name,
        "lateness_us": model.lateness_us,
        "reopen_window_us": model.reopen_window_us,
        "ticket_slas": [{
            "ledger": index[(name, s.name)], "target": list(s.target.items()), "queues": sorted(s.queues),
            "channels": sorted(s.channels), "pause_statuses": sorted(s.pause_statuses),
            "stops_on_agent_reply": s.stops_on_agent_reply, "restarts_on_reopen": s.restarts_on_reopen,
            "calendar": None if isinstance(model.calendars[s.name], AlwaysOpen) else model.calendars[s.name],
        } for s in model.ticket_slas],
        "call_slas": [{
            "ledger": index[(name, s.name)], "kind": s.kind, "within": s.within, "short_abandon": s.short_abandon,
            "counts_abandons": s.counts_abandons, "queues": sorted(s.queues),
        } for s in model.call_slas],
        "csat_slas": [{"ledger": index[(name, s.name)], "good_score": s.good_score} for s in model.csat_slas],
        "accuracy_ledgers": [index[(name, s.name)] for s in model.accuracy_slas],
        "uptime": {service: [lg.add_probe for lg in ledgers] for service, ledgers in model.uptime.items()},
    }


class HandBack:
    """Receives the compiled loop's state piece by piece (`EngineLoop.hand_back`) into the Python engine `shell`,
    shaped as its own."""

    def __init__(self, shell: Engine) -> None:
        self.shell = shell
        self.keys = list(shell.ledgers)
        self.ledgers = list(shell.ledgers.values())

    def header(self, now_us: int, horizon_us: int, seq: int, watermarks, stats) -> None:
        shell = self.shell
        shell.now_us, shell.horizon_us, shell._seq = now_us, horizon_us, seq
        shell.watermarks = dict(watermarks)
        events, duplicates, rejected, rebuilds, errors, evicted, finals = stats
        s = shell.stats
        s.events, s.rejected = Counter(dict(events)), Counter(dict(rejected))
        s.duplicates, s.rebuilds, s.errors, s.evicted_calls, s.final_tickets = (duplicates, rebuilds, errors,
                                                                               evicted, finals)

    def ledger(self, index: int, periods, windows, by_priority, sketches, buckets, instants, breaches) -> None:
        ledger = self.ledgers[index]
        ledger.periods, ledger.windows, ledger.by_priority = periods, windows, by_priority
        ledger.sketches = {label: LogSketch(counts, zeros, count) for label, counts, zeros, count in sketches}
        ledger.buckets, ledger.instants, ledger.breaches = buckets, instants, breaches
        ledger.count_keys = None

    def ticket(self, client: str, ticket_id: str, base, current, events, last_us: int, contribs,
               pushed: int | None) -> None:
        shell = self.shell
        item = self._item(client, ticket_id, base, current, events, last_us, contribs, pushed)
        key = (client, ticket_id)
        shell.tickets[key] = item
        shell._index_ticket(key, item)
        if pushed is not None:
            heapq.heappush(shell._heap, (pushed, key))

    def _item(self, client: str, ticket_id: str, base, current, events, last_us: int, contribs,
              pushed: int | None) -> TicketItem:
        model = self.shell.clients[client]
        state = _ticket_state(model, ticket_id, current)
        return TicketItem(
            state if base is None else _ticket_state(model, ticket_id, base), state,
            [(ts, seq, _ticket_event(client, ticket_id, ts, ev)) for ts, seq, ev in events] if events else (),
            last_us, tuple(_contribution(self.keys, c) for c in contribs), pushed,
        )

    def review(self, groups: dict, breach_priorities: dict, breach_facts: dict) -> None:
        """A `ReviewEngine`'s tables (monitor.review.groups)."""
        shell = self.shell
        shell.groups, shell.breach_priorities, shell.breach_facts = groups, breach_priorities, breach_facts

    def call(self, client: str, call_id: str, fields, contribs) -> None:
        queue, offered, answered, abandoned, ended, wrapup = fields
        state = CallState(call_id, queue, offered, answered, abandoned, ended, wrapup)
        self.shell.calls[(client, call_id)] = CallItem(state, [_contribution(self.keys, c) for c in contribs])


class ViewSync(HandBack):
    """Brings the scrapes' copy of a worker's compiled partition (`streams.partition_engine.PartitionEngine.view`)
    up to date (`LivePartition.sync_view`): what changed replaces its piece, the open-clock index told before each
    ticket changes, as the Python engine tells it. The copy keeps no deadline heap (it never decides: the partition
    does, then syncs) and no breach listings (a scrape reads none)."""

    def ledger(self, index: int, periods, windows, by_priority, sketches, buckets, instants, breaches) -> None:
        super().ledger(index, periods, windows, by_priority, sketches, buckets, instants, {})

    def ledger_cells(self, index: int, buckets, periods) -> None:
        ledger = self.ledgers[index]
        for bucket, tally, detail in buckets:
            _put(ledger.buckets, bucket, tally)
            _put(ledger.instants, bucket, detail)
        for label, tally, window, by_priority, sketch in periods:
            _put(ledger.periods, label, tally)
            if window is not None:
                ledger.windows[label] = window
            for key in [key for key in ledger.by_priority if key[0] == label]:
                del ledger.by_priority[key]
            for priority, t in by_priority:
                ledger.by_priority[(label, priority)] = t
            _put(ledger.sketches, label, None if sketch is None else LogSketch(*sketch))
        ledger.count_keys = None

    def ticket(self, client: str, ticket_id: str, base, current, events, last_us: int, contribs,
               pushed: int | None) -> None:
        shell, key = self.shell, (client, ticket_id)
        if shell.open_index is not None:
            shell.open_index.before_change(key)
        item = self._item(client, ticket_id, base, current, events, last_us, contribs, pushed)
        shell.tickets[key] = item
        shell._index_ticket(key, item)

    def drop_ticket(self, client: str, ticket_id: str) -> None:
        shell, key = self.shell, (client, ticket_id)
        if shell.open_index is not None:
            shell.open_index.before_change(key)
        shell.tickets.pop(key, None)
        shell.open_tickets.discard(key)
        shell.orphan_tickets.discard(key)

    def drop_call(self, client: str, call_id: str) -> None:
        self.shell.calls.pop((client, call_id), None)


def _put(table: dict, key, value) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def _label(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def _ticket_state(model: ClientModel, ticket_id: str, fields) -> TicketState:
    created, priority, queue, channel, status, resolved, resolved_us, orphans, clocks = fields
    slas = model.ticket_slas
    return TicketState(ticket_id, created, _label(priority), _label(queue), _label(channel), _label(status),
                       resolved, resolved_us, orphans, tuple(
                           Clock(slas[i], model.calendars[slas[i].name], target, _label(prio), elapsed, since,
                                 deadline, good, decided)
                           for i, target, prio, elapsed, since, deadline, good, decided in clocks))


def _ticket_event(client: str, ticket_id: str, ts: int, fields) -> TicketEvent:
    event_id, kind, priority, status, queue, channel = fields
    return ticket_event_of(event_id, client, ts, ticket_id, kind, priority, status, queue, channel)


def _contribution(keys: list[tuple[str, str]], fields) -> Contribution:
    ledger, *rest = fields
    return Contribution(keys[ledger][1], *rest)
