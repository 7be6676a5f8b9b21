"""Call metrics (service level, ASA, abandon rate, AHT) from a call's offered/answered/abandoned/ended events.

A call's contributions are a pure function of the *set* of its events (the first of each type by event
time), so arrival order never matters. Spec section 3:
- wait = answer (or abandon) time - offer time; a short abandon (wait < short_abandon) counts nowhere;
- service level: answered within T / (answered + abandoned), or / answered with `abandons: ignore`;
- ASA and abandon rate count at the answer/abandon instant, AHT at the end instant;
- AHT = ended - answered + wrapup_seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.contracts import CallSla
from monitor.events import CallEvent
from monitor.ledger import Contribution

US = 1_000_000


@dataclass(slots=True)
class CallState:
    call_id: str
    queue: str | None = None
    offered_us: int | None = None
    answered_us: int | None = None
    abandoned_us: int | None = None
    ended_us: int | None = None
    wrapup_s: float = 0.0

    def apply(self, ev: CallEvent, ts: int) -> bool:
        """Record the event; True when the call's contributions may have changed."""
        kind = ev.type
        if kind == "offered":
            self.queue = ev.queue
            self.offered_us = _first(self.offered_us, ts)
        elif kind == "answered":
            self.answered_us = _first(self.answered_us, ts)
        elif kind == "abandoned":
            self.abandoned_us = _first(self.abandoned_us, ts)
        elif kind == "ended" and (self.ended_us is None or ts < self.ended_us):
            self.ended_us, self.wrapup_s = ts, ev.wrapup_seconds or 0.0
        if self.queue is None:
            self.queue = ev.queue
        return self.offered_us is not None and (self.answered_us is not None or self.abandoned_us is not None)

    @property
    def waiting(self) -> bool:
        """Offered, neither answered nor abandoned, and not ended (a callback accepted, a transfer out of the
        queue: the caller no longer waits, though the call counts in no SLA)."""
        return (self.offered_us is not None and self.answered_us is None and self.abandoned_us is None
                and self.ended_us is None)

    @property
    def orphan(self) -> bool:
        return self.offered_us is None

    def contributions(self, slas: list[CallSla]) -> list[Contribution]:
        if self.offered_us is None:
            return []
        out = []
        for sla in slas:
            if sla.queues and self.queue not in sla.queues:
                continue
            c = self._contribution(sla)
            if c is not None:
                out.append(c)
        return out

    def _contribution(self, sla: CallSla) -> Contribution | None:
        # An answer wins over an abandon reported for the same call (a retried/raced signal).
        if self.answered_us is not None:
            wait_us = max(0, self.answered_us - self.offered_us)
            wait = wait_us / US
            at = self.answered_us
            if sla.kind == "service_level":
                good = wait_us <= sla.within
                return Contribution(sla.name, at, 1, int(good), int(not good), wait, wait, None, self.call_id)
            if sla.kind == "asa":
                return Contribution(sla.name, at, 1, 0, 0, wait, wait, None, self.call_id)
            if sla.kind == "abandon_rate":
                return Contribution(sla.name, at, 1, 1, 0, 0.0, None, None, self.call_id)
            if self.ended_us is not None:  # aht
                handle = max(0, self.ended_us - self.answered_us) / US + self.wrapup_s
                return Contribution(sla.name, self.ended_us, 1, 0, 0, handle, handle, None, self.call_id)
            return None
        if self.abandoned_us is None:
            return None
        wait_us = max(0, self.abandoned_us - self.offered_us)
        if wait_us < sla.short_abandon:
            return None
        at = self.abandoned_us
        if sla.counts_abandons:
            return Contribution(sla.name, at, 1, 0, 1, 0.0, None, None, self.call_id)
        return None


def _first(current: int | None, ts: int) -> int:
    return ts if current is None or ts < current else current
