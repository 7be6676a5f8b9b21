"""Questions asked of a live engine at an instant: open ticket clocks per SLA, waiting calls per queue, decisions
in a window. The report and the metrics collector ask them here, each in one pass over what is open, instead of
walking the engine's tables themselves.

    live = open_clocks(engine, at_us, due_within=(30 * 60 * US,))
    live[("acme", "resolution")].due[("P1", 30 * 60 * US)]   # P1 clocks whose deadline is within 30 min
    waiting_calls(engine, "acme", at_us)["support"].oldest_us
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.engine import Engine
from monitor.ledger import Counts, Tally
from monitor.open_clock_index import OpenClocks, index_of


def open_clocks(engine: Engine, at_us: int, due_within: Iterable[int] = (),
                clients: Iterable[str] | None = None) -> dict[tuple[str, str], OpenClocks]:
    """Every open ticket clock at `at_us`, summed per (client, SLA name): counts by priority, by the last
    stage reached (a share of the target elapsed, the SLA's `stages`), and deadlines due within each span.
    Answered from the engine's `OpenClockIndex` (kept as tickets change); `scan_open_clocks` is the same
    answer from a pass over every open clock."""
    return index_of(engine).at(at_us, due_within, clients)


def scan_open_clocks(engine: Engine, at_us: int, due_within: Iterable[int] = (),
                     clients: Iterable[str] | None = None) -> dict[tuple[str, str], OpenClocks]:
    """`open_clocks` by a pass over every open clock: the definition the index is tested against."""
    wanted = None if clients is None else set(clients)
    spans = tuple(due_within)
    out: dict[tuple[str, str], OpenClocks] = {}
    tickets = engine.tickets
    for key in engine.open_tickets:  # tickets with an open clock; decided ones are most of them
        client = key[0]
        if wanted is not None and client not in wanted:
            continue
        for clock in tickets[key].state.clocks:
            if not clock.open:
                continue
            entry = out.get((client, clock.sla.name))
            if entry is None:
                entry = out[(client, clock.sla.name)] = OpenClocks()
            entry.count += 1
            entry.by_priority[clock.priority] += 1
            elapsed = clock.elapsed_at(at_us)
            reached = [s for s in clock.sla.stages if elapsed >= s * clock.target_us]
            if reached:
                entry.stages[reached[-1]] += 1
            deadline = clock.deadline_us
            if deadline is not None:
                for span in spans:
                    if deadline <= at_us + span:
                        entry.due[(clock.priority, span)] += 1
                if entry.next_deadline_us is None or deadline < entry.next_deadline_us:
                    entry.next_deadline_us = deadline
    return out


@dataclass(slots=True)
class WaitingCalls:
    """Calls offered to one queue and neither answered nor abandoned."""

    count: int = 0
    oldest_us: int | None = None  # when the longest-waiting one was offered


def waiting_calls(engine: Engine, client: str, at_us: int) -> dict[str | None, WaitingCalls]:
    """The client's waiting calls at `at_us`, per queue."""
    out: dict[str | None, WaitingCalls] = {}
    for (owner, _), item in engine.calls.items():
        state = item.state
        if owner != client or not state.waiting or state.offered_us > at_us:
            continue
        entry = out.get(state.queue)
        if entry is None:
            entry = out[state.queue] = WaitingCalls()
        entry.count += 1
        if entry.oldest_us is None or state.offered_us < entry.oldest_us:
            entry.oldest_us = state.offered_us
    return out


def decisions_between(engine: Engine, client: str, sla: str, start_us: int, end_us: int) -> Tally:
    """The SLA's decisions with start <= decision instant < end (exact; see `SlaLedger.window`)."""
    return engine.ledgers[(client, sla)].window(start_us, end_us)


def decision_counts_between(engine: Engine, client: str, sla: str, start_us: int, end_us: int) -> Counts:
    """`decisions_between`'s decided, good and bad, from cumulative counts (`SlaLedger.window_counts`)."""
    return engine.ledgers[(client, sla)].window_counts(start_us, end_us)


def all_periods(engine: Engine, client: str, sla: str) -> Tally:
    """The sum of the SLA's decisions over every period the engine holds."""
    out = Tally()
    for tally in engine.ledgers[(client, sla)].periods.values():
        out.merge(tally)
    return out


def decided_slas(engine: Engine) -> list[tuple[str, str]]:
    """Every (client, SLA name) whose decisions the engine keeps in a ledger (all but uptime)."""
    return list(engine.ledgers)


def last_probe(engine: Engine, client: str, service: str) -> tuple[int, bool] | None:
    """The newest probe of a service: (instant, up), or None before the first one."""
    ledgers = engine.clients[client].uptime.get(service)
    return ledgers[0].last_probe() if ledgers else None


def event_watermark(engine: Engine, client: str) -> int | None:
    """The newest event time seen from the client (None before its first event)."""
    return engine.watermarks.get(client)
