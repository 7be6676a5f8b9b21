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
        """One contribution per SLA the call counts in (the wait is worked out once, not per SLA)."""
        offered = self.offered_us
        if offered is None:
            return []
        out: list[Contribution] = []
        queue, call_id = self.queue, self.call_id
        # An answer wins over an abandon reported for the same call (a retried/raced signal).
        at = self.answered_us
        if at is not None:
            wait_us = max(0, at - offered)
            wait = wait_us / US
            for sla in slas:
                if sla.queues and queue not in sla.queues:
                    continue
                kind = sla.kind
                if kind == "service_level":
                    good = int(wait_us <= sla.within)
                    out.append(_new(Contribution, (sla.name, at, 1, good, 1 - good, wait, wait, None, call_id)))
                elif kind == "asa":
                    out.append(_new(Contribution, (sla.name, at, 1, 0, 0, wait, wait, None, call_id)))
                elif kind == "abandon_rate":
                    out.append(_new(Contribution, (sla.name, at, 1, 1, 0, 0.0, None, None, call_id)))
                elif self.ended_us is not None:  # aht
                    handle = max(0, self.ended_us - at) / US + self.wrapup_s
                    out.append(_new(Contribution, (sla.name, self.ended_us, 1, 0, 0, handle, handle, None, call_id)))
            return out
        at = self.abandoned_us
        if at is None:
            return out
        wait_us = max(0, at - offered)
        for sla in slas:
            if sla.queues and queue not in sla.queues:
                continue
            if wait_us >= sla.short_abandon and sla.counts_abandons:
                out.append(_new(Contribution, (sla.name, at, 1, 0, 1, 0.0, None, None, call_id)))
        return out


_new = tuple.__new__  # Contribution(*fields) without the NamedTuple's Python-level __new__ (all nine given)


def _first(current: int | None, ts: int) -> int:
    return ts if current is None or ts < current else current
