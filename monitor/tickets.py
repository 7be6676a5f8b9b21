"""Ticket SLA clocks (first response, resolution): the exact definitions of spec section 3.

A `TicketState` is a pure function of the ticket's events in (ts, arrival) order plus the instant through
which deadlines have been decided. In-order events update it incrementally; an event older than what
the state already reflects makes the engine rebuild the state from the ticket's events.

Interpretations (README "Definitions"):
- A deadline decides a breach once time passes it; a stop at exactly the deadline is met.
- A priority change re-targets the open clock keeping its elapsed time; if the elapsed time already
  exceeds the new target, the breach is decided at the change instant (it could not be known earlier); if it
  equals it, the change instant is the deadline (a stop at that instant is met).
- A clock that reaches its target at the instant it is paused keeps that deadline: a pause is not a stop.
  A priority the SLA has no target for keeps the previous target.
- `resolved`/`closed` stop every running clock; `reopened` resumes a *met* resolution clock (the met is
  withdrawn); a breach stays. First response is decided once and never reopened.
- Events before `created` are not applied (orphans) and counted.

Size (bench/state_scale.py): a worker may hold a million open tickets, so a state is kept small. A copy
shares its clocks with the original until either side changes them (the engine keeps a compacted copy of
every ticket, which is rarely touched again); the labels (priority, queue, channel, status) are interned.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from monitor.calendar import AlwaysOpen, BusinessCalendar
from monitor.contracts import TicketSla
from monitor.events import TicketEvent
from monitor.ledger import Contribution

US = 1_000_000


@dataclass(slots=True)
class Clock:
    sla: TicketSla
    cal: BusinessCalendar | AlwaysOpen
    target_us: int
    priority: str
    elapsed_us: int = 0
    since_us: int | None = None  # running since this instant; None while paused or stopped
    deadline_us: int | None = None
    good: bool | None = None  # None while open
    decided_us: int | None = None

    @property
    def open(self) -> bool:
        return self.good is None

    def accrue(self, t_us: int) -> None:
        if self.since_us is not None:
            self.elapsed_us += self.cal.elapsed_us(self.since_us, t_us)
            self.since_us = t_us

    def run(self, t_us: int) -> None:
        self.since_us = t_us
        self.deadline_us = self.cal.add_us(t_us, self.target_us - self.elapsed_us)

    def pause(self, t_us: int) -> None:
        self.accrue(t_us)
        self.since_us = None
        if self.elapsed_us < self.target_us:
            self.deadline_us = None
        # else the clock reached its target at its deadline (this instant): a pause is not a stop, so the
        # deadline stays and decides the breach (spec: only a stop at the deadline is met)

    def decide(self, t_us: int, good: bool) -> None:
        if good:
            self.accrue(t_us)
        else:
            self.elapsed_us = max(self.elapsed_us, self.target_us)
        self.since_us = self.deadline_us = None
        self.good, self.decided_us = good, t_us

    def elapsed_at(self, t_us: int) -> int:
        if self.since_us is None or t_us <= self.since_us:
            return self.elapsed_us
        return self.elapsed_us + self.cal.elapsed_us(self.since_us, t_us)

    def copy(self) -> Clock:
        return Clock(self.sla, self.cal, self.target_us, self.priority, self.elapsed_us, self.since_us,
                     self.deadline_us, self.good, self.decided_us)

    def contribution(self, ticket_id: str) -> Contribution | None:
        if self.good is None:
            return None
        return Contribution(
            self.sla.name, self.decided_us, 1, int(self.good), int(not self.good), 0.0,
            self.elapsed_us / US, self.priority, ticket_id,
        )


@dataclass(slots=True)
class TicketState:
    ticket_id: str
    created_us: int | None = None
    priority: str | None = None
    queue: str | None = None
    channel: str | None = None
    status: str | None = None
    resolved: bool = False
    resolved_us: int | None = None  # when it last became resolved or closed (the reopen window starts there)
    orphans: int = 0  # events seen before `created`
    clocks: tuple[Clock, ...] = ()  # a tuple: 32 bytes less than a grown list, per ticket and copy
    shared: bool = field(default=False, repr=False, compare=False)  # `clocks` may be another state's too

    def copy(self) -> TicketState:
        """An independent copy. The clocks are shared until one side changes them (copy-on-write)."""
        self.shared = True
        return TicketState(self.ticket_id, self.created_us, self.priority, self.queue, self.channel,
                           self.status, self.resolved, self.resolved_us, self.orphans, self.clocks, True)

    def _own_clocks(self) -> tuple[Clock, ...]:
        """The clocks, copied first if another state may hold them: call before changing any clock."""
        if self.shared:
            self.clocks = tuple([c.copy() for c in self.clocks])
            self.shared = False
        return self.clocks

    def fire(self, through_us: int) -> bool:
        """Decide every deadline <= through_us as a breach. True if something was decided."""
        fired = False
        for i, clock in enumerate(self.clocks):
            if clock.deadline_us is not None and clock.deadline_us <= through_us:
                clock = self._own_clocks()[i]
                clock.decide(clock.deadline_us, good=False)
                fired = True
        return fired

    def final_after(self, reopen_window_us: int) -> int | None:
        """The instant after which nothing can change this ticket (spec "Final items"): resolved or closed with
        every clock decided, plus the reopen window. None while it can still change."""
        if not self.resolved or self.resolved_us is None or any(c.good is None for c in self.clocks):
            return None
        return self.resolved_us + reopen_window_us

    def next_deadline(self) -> int | None:
        deadlines = [c.deadline_us for c in self.clocks if c.deadline_us is not None]
        return min(deadlines) if deadlines else None

    def contributions(self) -> tuple[Contribution, ...]:
        """A tuple (the engine keeps it per ticket; most open tickets have none: the shared empty tuple)."""
        return tuple([c for c in (clock.contribution(self.ticket_id) for clock in self.clocks) if c])

    def apply(self, ev: TicketEvent, ts: int, slas: list[TicketSla], calendars: dict) -> None:
        """Apply one event at ts; deadlines < ts must already be fired."""
        kind = ev.type
        if kind != "customer_reply":  # every other kind may change a clock
            self._own_clocks()
        if kind == "created":
            if self.created_us is None:
                self._create(ev, ts, slas, calendars)
            return
        if self.created_us is None:
            self.orphans += 1
            return
        if kind == "agent_reply":
            for clock in self.clocks:
                if clock.open and clock.sla.stops_on_agent_reply:
                    clock.decide(ts, good=True)
        elif kind in ("resolved", "closed"):
            if not self.resolved:
                self.resolved, self.resolved_us = True, ts
            for clock in self.clocks:
                if clock.open:
                    clock.decide(ts, good=True)
        elif kind == "reopened":
            self._reopen(ts)
        elif kind == "status":
            self.status = _label(ev.status)
            for clock in self.clocks:
                if clock.open:
                    self._follow_status(clock, ts)
        elif kind == "priority":
            self._retarget(ev.priority, ts)

    def _create(self, ev: TicketEvent, ts: int, slas: list[TicketSla], calendars: dict) -> None:
        self.created_us, self.priority = ts, _label(ev.priority)
        self.queue, self.channel = _label(ev.queue), _label(ev.channel)
        clocks = []
        for sla in slas:
            target = sla.target.get(ev.priority)
            if target is None or (sla.queues and ev.queue not in sla.queues) or (
                sla.channels and ev.channel not in sla.channels
            ):
                continue
            clock = Clock(sla, calendars[sla.name], target, self.priority)
            clock.run(ts)
            clocks.append(clock)
        self.clocks = tuple(clocks)

    def _follow_status(self, clock: Clock, ts: int) -> None:
        paused = self.status in clock.sla.pause_statuses
        if paused and clock.since_us is not None:
            clock.pause(ts)
        elif not paused and clock.since_us is None:
            clock.run(ts)

    def _reopen(self, ts: int) -> None:
        if not self.resolved:
            return
        self.resolved, self.resolved_us = False, None
        for clock in self.clocks:
            if clock.sla.restarts_on_reopen and clock.good:
                clock.good = clock.decided_us = None
                clock.since_us = None
                self._follow_status(clock, ts)

    def _retarget(self, priority: str, ts: int) -> None:
        priority = self.priority = _label(priority)
        for clock in self.clocks:
            target = clock.sla.target.get(priority)
            if not clock.open or target is None:
                continue
            running = clock.since_us is not None
            clock.accrue(ts)
            clock.target_us, clock.priority = target, priority
            if clock.elapsed_us > target:  # past the new target already: known only now
                clock.decide(ts, good=False)
            elif running:
                clock.run(ts)
            elif clock.elapsed_us == target:  # a paused clock reaches its new target now: a deadline, not a stop
                clock.deadline_us = ts


def _label(value: str | None) -> str | None:
    """One shared string per distinct label: a million open tickets would otherwise hold a million "P3"s."""
    return None if value is None else sys.intern(value)
