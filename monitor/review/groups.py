"""Tallies per queue and per channel, for the review's tables by queue and channel (`slamon report`).

    engine = ReviewEngine(contracts)                       # an Engine that also keeps `groups`
    result = replay_lines(lines, contracts, at, engine)
    review = build_review(result, engine, "2026-11")       # SlaReview.groups: one row per queue / channel

The engine's ledgers keep tallies per priority (a contribution carries its priority) but not per queue or channel.
`ReviewEngine` keeps them beside the ledgers: each decision is counted under the queue and the channel its item had
when it was decided, with the same amounts and sign the ledger gets (a withdrawn decision is subtracted). These are
the item facts the SLA-events record carries (`streams.partition_engine.sla_event`: a ticket's queue and channel, a
call's queue) and the SLA record sums per period (table `sla_groups`, `store/db.py`), so the review from the store
has the same tables (`store.report.review_from_store`; tests/unit/test_store_report.py compares them).

It also keeps the priority of each breach in force (`breach_priorities`, from the contribution, as the record's
`priority`), so the review can show the breached tickets of the highest priority first, and the breach's clock
facts (`breach_facts`: elapsed, target and paused seconds of SLA time, computed as the SLA-events record's
`elapsed_s`, `target_s`, `paused_s` are by `streams.partition_engine.sla_event`), for the review's breach reasons.

Only ticket and call SLAs (their items have a queue), and only calendar periods (a rolling window's tally here would
hold every decision ever made, as the ledgers' `by_priority` would: the review shows neither for rolling SLAs).

A withdrawal is attributed to the item's queue at the time it is withdrawn. A ticket's queue and channel are set
once, by its `created` event; a call's queue is its `offered` event's, so only a call offered twice in two queues can
move a withdrawal to another queue than its decision (the SLA record subtracts the stored row, with the old queue).
"""

from __future__ import annotations

from monitor.contracts import CallSla, Contracts, Rolling, TicketSla
from monitor.engine import Engine
from monitor.ledger import BUCKET_US, Contribution, Tally, to_millionths

QUEUE, CHANNEL = "queue", "channel"


class ReviewEngine(Engine):
    """An Engine that also keeps, per (client, SLA), tallies per (period label, "queue" | "channel", name), and the
    priority of each breached ticket (the ledgers' breach lists hold the id and the instant only).

    The compiled replay loop (native/engine/src/review.rs) keeps the same tables, `_contribute` below being the
    reference, and hands them back with every unresolved ticket (`open_backlog` reads them)."""

    compiled_review = True  # monitor.compiled_replay may replay for it

    def __init__(self, contracts: Contracts, **options) -> None:
        super().__init__(contracts, **options)
        self.groups: dict[tuple[str, str], dict[tuple[str, str, str], Tally]] = {}
        # (client, sla) -> the engine's table of that SLA's items ("tickets" | "calls")
        self._items_of: dict[tuple[str, str], str] = {}
        self._last_label: dict[tuple[str, str], tuple[int, str]] = {}  # (client, sla) -> (bucket, period label)
        # (client, sla, ticket id) -> the priority of the breach in force (the review lists the highest first)
        self.breach_priorities: dict[tuple[str, str, str], str] = {}
        # (client, sla, ticket id) -> (elapsed_s, target_s, paused_s) of the breach in force (None where unknown)
        self.breach_facts: dict[tuple[str, str, str], tuple[float | None, float | None, float | None]] = {}
        self._rolling: set[tuple[str, str]] = set()  # no tallies per queue for these (module docstring)
        for name, client in contracts.clients.items():
            for sla in client.slas:
                if isinstance(sla.period, Rolling):
                    self._rolling.add((name, sla.name))
                if isinstance(sla, TicketSla):
                    self._items_of[(name, sla.name)] = "tickets"
                elif isinstance(sla, CallSla):
                    self._items_of[(name, sla.name)] = "calls"

    def _contribute(self, client: str, c: Contribution, sign: int) -> None:
        super()._contribute(client, c, sign)
        table_name = self._items_of.get((client, c.sla))
        if table_name is None or c.item is None:
            return
        if c.bad and c.priority is not None and table_name == "tickets":
            if sign > 0:
                self.breach_priorities[(client, c.sla, c.item)] = c.priority
                self.breach_facts[(client, c.sla, c.item)] = self._breach_facts(client, c)
            else:
                self.breach_priorities.pop((client, c.sla, c.item), None)
                self.breach_facts.pop((client, c.sla, c.item), None)
        if (client, c.sla) in self._rolling:
            return
        item = getattr(self, table_name).get((client, c.item))
        if item is None:
            return
        state = item.state
        queue, channel = state.queue, getattr(state, "channel", None)
        if queue is None and channel is None:
            return
        bucket = c.at_us // BUCKET_US  # a 15-minute bucket lies in one period: its label is remembered
        last = self._last_label.get((client, c.sla))
        if last is not None and last[0] == bucket:
            label = last[1]
        else:
            label = self.ledgers[(client, c.sla)]._label(c.at_us)
            self._last_label[(client, c.sla)] = (bucket, label)
        table = self.groups.get((client, c.sla))
        if table is None:
            table = self.groups[(client, c.sla)] = {}
        for dimension, name in ((QUEUE, queue), (CHANNEL, channel)):
            if name is None:
                continue
            key = (label, dimension, name)
            tally = table.get(key)
            if tally is None:
                tally = table[key] = Tally()
            tally.add(c.decided, c.good, c.bad, to_millionths(c.total), sign)

    def _breach_facts(self, client: str, c: Contribution) -> tuple[float | None, float | None, float | None]:
        """(elapsed_s, target_s, paused_s) of a breach, exactly as the SLA-events record states them
        (`streams.partition_engine.sla_event`): the store's review reads those columns, this one must equal them."""
        sla = next(s for s in self.contracts.clients[client].slas if s.name == c.sla)
        target = sla.target.get(c.priority)
        if target is None or c.sample is None:
            return c.sample, None if target is None else target / 1e6, None
        elapsed = round(c.sample * 1_000_000)
        item = self.tickets.get((client, c.item))
        start = item.state.created_us if item is not None else None
        cal = self.clients[client].calendars.get(c.sla)
        paused = None if start is None or cal is None else max(0, cal.elapsed_us(start, c.at_us) - elapsed) / 1e6
        return c.sample, target / 1e6, paused

    def merge(self, other: Engine) -> None:
        super().merge(other)
        self.breach_priorities.update(getattr(other, "breach_priorities", {}))
        self.breach_facts.update(getattr(other, "breach_facts", {}))
        for key, table in getattr(other, "groups", {}).items():
            mine = self.groups.setdefault(key, {})
            for group, tally in table.items():
                mine.setdefault(group, Tally()).merge(tally)
