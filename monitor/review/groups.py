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
`priority`), so the review can show the breached tickets of the highest priority first.

Only ticket and call SLAs (their items have a queue), and only calendar periods (a rolling window's tally here would
hold every decision ever made, as the ledgers' `by_priority` would: the review shows neither for rolling SLAs).

A withdrawal is attributed to the item's queue at the time it is withdrawn. A ticket's queue and channel are set
once, by its `created` event; a call's queue is its `offered` event's, so only a call offered twice in two queues can
move a withdrawal to another queue than its decision (the SLA record subtracts the stored row, with the old queue).
"""

from __future__ import annotations

from monitor.contracts import CallSla, Contracts, Rolling, TicketSla
from monitor.engine import Engine
from monitor.ledger import BUCKET_US, Contribution, Tally

QUEUE, CHANNEL = "queue", "channel"


class ReviewEngine(Engine):
    """An Engine that also keeps, per (client, SLA), tallies per (period label, "queue" | "channel", name), and the
    priority of each breached ticket (the ledgers' breach lists hold the id and the instant only)."""

    def __init__(self, contracts: Contracts, **options) -> None:
        super().__init__(contracts, **options)
        self.groups: dict[tuple[str, str], dict[tuple[str, str, str], Tally]] = {}
        # (client, sla) -> the engine's table of that SLA's items ("tickets" | "calls")
        self._items_of: dict[tuple[str, str], str] = {}
        self._last_label: dict[tuple[str, str], tuple[int, str]] = {}  # (client, sla) -> (bucket, period label)
        # (client, sla, ticket id) -> the priority of the breach in force (the review lists the highest first)
        self.breach_priorities: dict[tuple[str, str, str], str] = {}
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
            else:
                self.breach_priorities.pop((client, c.sla, c.item), None)
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
            tally.add(c.decided, c.good, c.bad, c.total, sign)

    def merge(self, other: Engine) -> None:
        super().merge(other)
        self.breach_priorities.update(getattr(other, "breach_priorities", {}))
        for key, table in getattr(other, "groups", {}).items():
            mine = self.groups.setdefault(key, {})
            for group, tally in table.items():
                mine.setdefault(group, Tally()).merge(tally)
