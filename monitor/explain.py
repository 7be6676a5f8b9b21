"""Why an item counts as met or breached: its SLA timeline per SLA (`slamon explain ITEM`). Pure, no I/O.

    e = explain_ticket(contracts, "acme", "INC-123", events, at_us)     # events: the ticket's accepted events
    e = explain_call(contracts, "acme", "C-9", events, at_us)
    e = explain_decisions(contracts, "acme", "INC-123", rows, withdrawn) # from the SLA record (store/)
    render_table(e); e.as_dict()

From events, the timeline is computed by the engine's own clock code (`monitor.tickets.TicketState`,
`monitor.calls.CallState`) applied in (event time, arrival) order, which is the order the engine's result
equals whatever the arrival order (README "Order independence"): created and which SLAs apply (or why not),
priority changes (re-targeted deadlines), pauses and resumes, business-hours gaps while the clock runs,
deadlines, the stop (reply, resolution) or the breach at the deadline, reopens, the outcome and the period it
counts in. Totals add up: elapsed (clock time counted) + paused + stopped (resolved before a reopen; both in the
SLA's own time, business or calendar, like elapsed) + outside business hours (wall time) = the wall time from
created to the decision (or to the report instant while open). The SLA record's `paused_s` is paused + stopped.

From the SLA record, each SLA has the decision in force and every withdrawn one (in topic order); the facts are
the record's (start, deadline, stop, elapsed, paused, target, period), and business-hours gaps are computed from
the contract's calendar between start and the decision. Individual pauses are not in the record (their total is).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

from monitor.calendar import AlwaysOpen
from monitor.calls import CallState
from monitor.contracts import CALL_KINDS, TICKET_KINDS, CallSla, Contracts, Rolling, TicketSla
from monitor.engine import ClientModel
from monitor.events import CallEvent, TicketEvent, format_us
from monitor.periods import period_of, rolling_label
from monitor.tickets import TicketState

US = 1_000_000
MAX_GAP_STEPS = 60  # business-hours gaps listed one by one per SLA; more are summed in one step


@dataclass
class Step:
    at_us: int
    what: str  # created, status, paused, resumed, priority, outside hours, stopped, reopened, met, breached, ...
    detail: str
    elapsed_us: int | None = None  # clock time counted at this instant
    deadline_us: int | None = None  # the deadline in force after this step


@dataclass
class SlaTimeline:
    sla: str
    kind: str
    time: str | None  # business | calendar (ticket SLAs)
    applies: bool
    outcome: str  # met | breached | open | measured | not applicable | counts nowhere
    why: str = ""  # one sentence: the outcome and what decided it
    priority: str | None = None
    target_us: int | None = None
    start_us: int | None = None
    decided_us: int | None = None
    deadline_us: int | None = None
    stop_us: int | None = None
    period: str | None = None
    elapsed_us: int | None = None
    paused_us: int | None = None
    outside_hours_us: int | None = None
    stopped_us: int | None = None
    margin_us: int | None = None  # deadline - decision (negative: late by)
    value: float | None = None  # call SLAs: the wait or handle time measured (seconds)
    steps: list[Step] = field(default_factory=list)


@dataclass
class Explanation:
    client: str
    item: str
    kind: str  # ticket | call
    source: str  # events | store
    at_us: int | None
    timezone: str
    facts: dict
    slas: list[SlaTimeline]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON for tools: instants as RFC 3339 text next to their microseconds, durations in seconds."""
        out = asdict(self)
        out["at"] = None if self.at_us is None else format_us(self.at_us)
        for sla in out["slas"]:
            for key in [k for k in sla if k.endswith("_us")]:
                value = sla[key]
                name = key[:-3]
                if key in ("start_us", "decided_us", "deadline_us", "stop_us"):
                    sla[name] = None if value is None else format_us(value)
                else:
                    sla[name + "_seconds"] = None if value is None else value / US
            for step in sla["steps"]:
                step["at"] = format_us(step["at_us"])
                step["deadline"] = None if step["deadline_us"] is None else format_us(step["deadline_us"])
                step["elapsed_seconds"] = None if step["elapsed_us"] is None else step["elapsed_us"] / US
        return out


# --- tickets ---------------------------------------------------------------------------------------------

def explain_ticket(contracts: Contracts, client: str, ticket_id: str, events: list[TicketEvent],
                   at_us: int | None = None) -> Explanation:
    """The timeline of a ticket from its accepted events (any order; applied in (ts, arrival) order), as of
    `at_us` (default: the newest event): deadlines up to it are decided, later ones are open."""
    model = ClientModel.build(client, contracts)
    tz = model.tz
    ordered = [ev for _, ev in sorted(enumerate(events), key=lambda p: (p[1].ts_us, p[0]))]
    at = at_us if at_us is not None else max((ev.ts_us for ev in ordered), default=0)
    ordered = [ev for ev in ordered if ev.ts_us <= at]
    state = TicketState(ticket_id)
    lines = {sla.name: SlaTimeline(sla.name, sla.kind, sla.time, False, "not applicable") for sla in model.ticket_slas}
    tracker = _ClockTracker(lines, model)
    notes: list[str] = []
    facts: dict = {}
    for ev in ordered:
        ts = ev.ts_us
        tracker.fired(state, ts - 1)
        before = tracker.snapshot(state)
        created_before = state.created_us is not None
        state.apply(ev, ts, model.ticket_slas, model.calendars)
        if ev.type == "created" and not created_before:
            facts.update(created=format_us(ts), priority=ev.priority, queue=ev.queue, channel=ev.channel)
            tracker.created(state, ev, ts)
            continue
        if not created_before:
            notes.append(f"{format_us(ts)} {ev.type} before the ticket was created: not applied (orphan)")
            continue
        tracker.changed(state, before, ev, ts)
    tracker.fired(state, at)
    tracker.finish(state, at)
    if state.created_us is None:
        notes.append("no `created` event: no clock ever started (the events are held as orphans)")
    facts.update(status=state.status, resolved=state.resolved, final_priority=state.priority, events=len(ordered))
    return Explanation(client, ticket_id, "ticket", "events", at, tz, facts, list(lines.values()), notes)


class _ClockTracker:
    """Turns clock state changes into steps and keeps the totals per clock: paused and stopped (resolved before a
    reopen) time in the SLA's own time (business or calendar, like elapsed), closed hours in wall time."""

    def __init__(self, lines: dict[str, SlaTimeline], model: ClientModel) -> None:
        self.lines = lines
        self.model = model
        self.tz = model.tz
        self.spans: dict[str, list] = {}  # per clock: [paused since, stopped since, paused total, stopped total]

    @staticmethod
    def snapshot(state: TicketState) -> dict[str, tuple]:
        return {c.sla.name: (c.target_us, c.priority, c.since_us, c.deadline_us, c.good, c.decided_us)
                for c in state.clocks}

    def _step(self, name: str, at: int, what: str, detail: str, clock) -> None:
        self.lines[name].steps.append(Step(at, what, detail, clock.elapsed_at(at), clock.deadline_us))

    def created(self, state: TicketState, ev: TicketEvent, ts: int) -> None:
        clocks = {c.sla.name: c for c in state.clocks}
        for sla in self.model.ticket_slas:
            line = self.lines[sla.name]
            clock = clocks.get(sla.name)
            if clock is None:
                line.why = _not_applicable(sla, ev)
                line.steps.append(Step(ts, "created", f"{_ticket_facts(ev)}; {line.why}"))
                continue
            line.applies, line.outcome, line.start_us = True, "open", ts
            line.priority, line.target_us = clock.priority, clock.target_us
            self._step(sla.name, ts, "created", f"{_ticket_facts(ev)}: the clock starts; target "
                       f"{_dur(clock.target_us)} of {sla.time} time", clock)
            self.spans[sla.name] = [None, None, 0, 0]

    def _end_pause(self, clock, until: int) -> None:
        span = self.spans[clock.sla.name]
        if span[0] is not None:
            span[2] += clock.cal.elapsed_us(span[0], until)
            span[0] = None

    def changed(self, state: TicketState, before: dict, ev: TicketEvent, ts: int) -> None:
        for clock in state.clocks:
            name = clock.sla.name
            old = before.get(name)
            if old is None:
                continue
            o_target, o_prio, o_since, o_deadline, o_good, o_decided = old
            span = self.spans[name]
            label = _event_label(ev)
            if o_good is None and clock.good is not None:  # decided by this event
                self._end_pause(clock, ts)
                if clock.good:
                    span[1] = ts
                    self._step(name, ts, "met", f"{label}: stopped at {_dur(clock.elapsed_us)} of "
                               f"{_dur(clock.target_us)}" + ("" if o_deadline is None else
                                                             f", {_dur(o_deadline - ts)} before the deadline"), clock)
                else:
                    self._step(name, ts, "breached", f"{label}: priority {o_prio} -> {clock.priority}, target "
                               f"{_dur(clock.target_us)}, but {_dur(clock.elapsed_us)} had already elapsed: "
                               "breached at the change", clock)
                continue
            if o_good is not None and clock.good is None:  # reopened
                if span[1] is not None:
                    span[3] += clock.cal.elapsed_us(span[1], ts)
                    span[1] = None
                if clock.since_us is None:
                    span[0] = ts
                self._step(name, ts, "reopened", f"{label}: the met at {_local(o_decided, self.tz)} is withdrawn; the "
                           f"clock resumes at {_dur(clock.elapsed_us)}", clock)
                continue
            if clock.good is not None:
                continue
            if o_target != clock.target_us or o_prio != clock.priority:
                self._step(name, ts, "priority", f"{label}: priority {o_prio} -> {clock.priority}, target "
                           f"{_dur(o_target)} -> {_dur(clock.target_us)}; elapsed {_dur(clock.elapsed_at(ts))} is "
                           "kept", clock)
            if o_since is not None and clock.since_us is None:
                span[0] = ts
                self._step(name, ts, "paused", f"{label}: the clock stops at {_dur(clock.elapsed_us)}"
                           + ("; the target is reached now: the deadline stays" if clock.deadline_us else ""), clock)
            elif o_since is None and clock.since_us is not None:
                self._end_pause(clock, ts)
                self._step(name, ts, "resumed", f"{label}: the clock runs again", clock)
            elif ev.type == "status":
                self._step(name, ts, "status", f"{label} (no effect on this clock)", clock)

    def fired(self, state: TicketState, through: int) -> None:
        """Deadlines <= `through` are decided as breaches (as the engine's clock does)."""
        before = {c.sla.name: c.good for c in state.clocks}
        deadlines = {c.sla.name: c.deadline_us for c in state.clocks}
        if not state.fire(through):
            return
        for clock in state.clocks:
            name = clock.sla.name
            if before.get(name) is None and clock.good is False:
                self._end_pause(clock, deadlines[name])  # paused at the instant the target was reached
                self._step(name, deadlines[name], "breached", f"deadline reached at {_dur(clock.target_us)} with no "
                           f"{'reply' if clock.sla.stops_on_agent_reply else 'resolution'}", clock)

    def finish(self, state: TicketState, at: int) -> None:
        for clock in state.clocks:
            name = clock.sla.name
            line = self.lines[name]
            span = self.spans[name]
            if clock.good is None:  # still open at the report instant
                self._end_pause(clock, at)
                end = at
                line.outcome = "open"
                line.elapsed_us = clock.elapsed_at(at)
                line.deadline_us = clock.deadline_us
                line.why = (f"open at {_local(at, self.tz)}: {_dur(line.elapsed_us)} of {_dur(clock.target_us)} "
                            "elapsed" + ("" if clock.deadline_us is None else
                                         f", deadline {_local(clock.deadline_us, self.tz)}")
                            + ("" if clock.since_us is not None else " (paused)"))
            else:
                end = clock.decided_us
                line.outcome = "met" if clock.good else "breached"
                line.decided_us = clock.decided_us
                line.elapsed_us = clock.elapsed_us
                line.stop_us = clock.decided_us if clock.good else None
                decided = next((s for s in reversed(line.steps) if s.what in ("met", "breached")), None)
                line.deadline_us = _deadline_of(clock)
                line.margin_us = None if line.deadline_us is None else line.deadline_us - clock.decided_us
                line.period = _period(clock.sla, clock.decided_us, self.tz)
                line.why = (f"{line.outcome} at {_local(clock.decided_us, self.tz)}: "
                            + (decided.detail if decided else "") + f"; counts in {line.period}")
            line.priority, line.target_us = clock.priority, clock.target_us
            line.paused_us, line.stopped_us = span[2], span[3]
            gaps = closed_gaps(clock.cal, line.start_us, end)
            line.outside_hours_us = sum(b - a for a, b in gaps)
            for a, b in gaps[:MAX_GAP_STEPS]:
                line.steps.append(Step(a, "outside hours", f"closed until {_local(b, self.tz)} ({_dur(b - a)}): the "
                                                            "clock does not count"))
            if len(gaps) > MAX_GAP_STEPS:
                line.steps.append(Step(gaps[MAX_GAP_STEPS][0], "outside hours", f"{len(gaps) - MAX_GAP_STEPS} more "
                                       "closed spans"))
            line.steps.sort(key=lambda s: s.at_us)


def _deadline_of(clock) -> int | None:
    if not clock.good:
        return clock.decided_us
    if clock.elapsed_us >= clock.target_us:
        return clock.decided_us
    return clock.cal.add_us(clock.decided_us, clock.target_us - clock.elapsed_us)


def _not_applicable(sla: TicketSla, ev: TicketEvent) -> str:
    if sla.target.get(ev.priority) is None:
        return f"does not apply: the SLA has no target for priority {ev.priority}"
    if sla.queues and ev.queue not in sla.queues:
        return f"does not apply: queue {ev.queue} is not one of {', '.join(sorted(sla.queues))}"
    return f"does not apply: channel {ev.channel} is not one of {', '.join(sorted(sla.channels))}"


def _ticket_facts(ev: TicketEvent) -> str:
    parts = [f"created, priority {ev.priority}"]
    if ev.queue:
        parts.append(f"queue {ev.queue}")
    if ev.channel:
        parts.append(f"channel {ev.channel}")
    return ", ".join(parts)


def _event_label(ev: TicketEvent) -> str:
    if ev.type == "status":
        return f"status {ev.status}"
    if ev.type == "priority":
        return f"priority change to {ev.priority}"
    return ev.type.replace("_", " ")


def closed_gaps(cal, start_us: int, end_us: int) -> list[tuple[int, int]]:
    """The spans of [start, end) outside the calendar's open hours (nights, weekends, holidays)."""
    if end_us <= start_us or isinstance(cal, AlwaysOpen):
        return []
    zone = ZoneInfo(cal.tz)
    first = _dt.datetime.fromtimestamp(start_us / US, zone).date() - _dt.timedelta(days=1)
    last = _dt.datetime.fromtimestamp(end_us / US, zone).date() + _dt.timedelta(days=1)
    spans = []
    day = first
    while day <= last:
        spans.extend(cal.open_spans(day))
        day += _dt.timedelta(days=1)
    spans.sort()
    gaps, cursor = [], start_us
    for s, e in spans:
        if e <= cursor:
            continue
        if s >= end_us:
            break
        if s > cursor:
            gaps.append((cursor, min(s, end_us)))
        cursor = max(cursor, e)
        if cursor >= end_us:
            break
    if cursor < end_us:
        gaps.append((cursor, end_us))
    return gaps


# --- calls -----------------------------------------------------------------------------------------------

def explain_call(contracts: Contracts, client: str, call_id: str, events: list[CallEvent],
                 at_us: int | None = None) -> Explanation:
    model = ClientModel.build(client, contracts)
    tz = model.tz
    ordered = [ev for _, ev in sorted(enumerate(events), key=lambda p: (p[1].ts_us, p[0]))]
    at = at_us if at_us is not None else max((ev.ts_us for ev in ordered), default=0)
    ordered = [ev for ev in ordered if ev.ts_us <= at]
    state = CallState(call_id)
    steps: list[Step] = []
    for ev in ordered:
        ts = ev.ts_us
        state.apply(ev, ts)
        if ev.type == "offered":
            steps.append(Step(ts, "offered", f"offered in queue {ev.queue}"))
        elif ev.type == "answered":
            wait = None if state.offered_us is None else ts - state.offered_us
            steps.append(Step(ts, "answered", "answered" + ("" if wait is None else f" after {_dur(wait)} waiting")))
        elif ev.type == "abandoned":
            wait = None if state.offered_us is None else ts - state.offered_us
            steps.append(Step(ts, "abandoned", "abandoned" + ("" if wait is None else f" after {_dur(wait)}")))
        else:
            steps.append(Step(ts, "ended", "ended" + (f", wrap-up {ev.wrapup_seconds:g} s" if ev.wrapup_seconds
                                                      else "")))
    facts = {"queue": state.queue, "offered": _fmt(state.offered_us), "answered": _fmt(state.answered_us),
             "abandoned": _fmt(state.abandoned_us), "ended": _fmt(state.ended_us), "events": len(ordered)}
    contributions = {c.sla: c for c in state.contributions(model.call_slas)}
    lines = []
    for sla in model.call_slas:
        line = SlaTimeline(sla.name, sla.kind, None, not (sla.queues and state.queue not in sla.queues), "open",
                           steps=list(steps), start_us=state.offered_us)
        if not line.applies:
            line.outcome, line.why = "not applicable", f"queue {state.queue} is not one of {', '.join(sla.queues)}"
        elif state.offered_us is None:
            line.outcome, line.why = "open", "never offered: the call's events are held as orphans"
        else:
            c = contributions.get(sla.name)
            _call_outcome(line, sla, state, c, tz)
        lines.append(line)
    return Explanation(client, call_id, "call", "events", at, tz, facts, lines)


def _call_outcome(line: SlaTimeline, sla: CallSla, state: CallState, c, tz: str) -> None:
    if c is None:
        if state.abandoned_us is not None and state.answered_us is None:
            wait = state.abandoned_us - state.offered_us
            if wait < sla.short_abandon:
                line.outcome = "counts nowhere"
                line.why = f"abandoned after {_dur(wait)}, under the short-abandon {_dur(sla.short_abandon)}"
            else:
                line.outcome, line.why = "counts nowhere", "abandons are ignored by this SLA"
        else:
            line.why = "waiting" if state.answered_us is None else "not ended yet (handle time unknown)"
        return
    line.decided_us = c.at_us
    line.stop_us = c.at_us
    line.period = _period(sla, c.at_us, tz)
    line.value = c.sample if c.sample is not None else (c.total or None)
    if c.good or c.bad:
        line.outcome = "met" if c.good else "breached"
    else:
        line.outcome = "measured"
    if sla.answered_within_us is not None:  # a service level
        wait = (c.at_us - state.offered_us)
        line.target_us = sla.within
        line.deadline_us = state.offered_us + sla.within
        line.margin_us = line.deadline_us - c.at_us
        line.elapsed_us = wait
        what = "answered" if state.answered_us is not None else "abandoned"
        line.why = (f"{what} after {_dur(wait)} (within {_dur(sla.within)}: "
                    f"{'yes' if c.good else 'no'}); counts in {line.period}")
    elif sla.value_is_bad_share:  # an abandon rate
        line.why = ("answered: counts as kept" if c.good else "abandoned: counts as an abandon") + \
            f" in {line.period}"
    else:
        line.why = f"{'wait' if sla.mean_of == 'wait' else 'handle time'} {line.value:g} s, averaged in {line.period}"


# --- from the SLA record ---------------------------------------------------------------------------------

def explain_decisions(contracts: Contracts, client: str, item: str, decisions: list[dict],
                      withdrawn: list[dict]) -> Explanation:
    """The timeline from the store's rows for one item (`store.db` columns as dicts): per SLA the decision in
    force and the decisions withdrawn before it, in topic order."""
    model = ClientModel.build(client, contracts)
    tz = model.tz
    slas = {s.name: s for s in contracts.clients[client].slas}
    by_sla: dict[str, list[tuple[str, dict]]] = {}
    for row in withdrawn:
        by_sla.setdefault(row["sla"], []).append(("withdrawn", row))
    for row in decisions:
        by_sla.setdefault(row["sla"], []).append(("decided", row))
    lines = []
    kind = "ticket"
    facts: dict = {}
    for name, entries in by_sla.items():
        entries.sort(key=lambda e: (e[1]["topic_partition"], e[1]["topic_offset"]))
        sla = slas.get(name)
        current = next((row for change, row in reversed(entries) if change == "decided"), None)
        row = current or entries[-1][1]
        if row["kind"] not in TICKET_KINDS:
            kind = "call" if row["kind"] in CALL_KINDS else row["kind"]
        facts.update({k: row[k] for k in ("queue", "channel") if row.get(k) is not None})
        line = SlaTimeline(name, row["kind"], getattr(sla, "time", None), True,
                           "open" if current is None else (row["outcome"] if row["outcome"] != "good" else "met"))
        if line.outcome == "bad":
            line.outcome = "breached"
        line.priority = row.get("priority")
        line.target_us = _us(row.get("target_s"))
        line.start_us = row.get("start_us")
        line.elapsed_us = _us(row.get("elapsed_s"))
        line.paused_us = _us(row.get("paused_s"))
        if current is not None:
            line.decided_us = current["at_us"]
            line.deadline_us = current.get("deadline_us")
            line.stop_us = current.get("stop_us")
            line.period = current["period"]
            line.margin_us = None if line.deadline_us is None else line.deadline_us - line.decided_us
            line.value = current.get("sample")
        if line.start_us is not None:
            line.steps.append(Step(line.start_us, "start", "created" if row["kind"] in TICKET_KINDS else "offered", 0,
                                   None))
        for change, r in entries:
            word = {"good": "met", "bad": "breached"}.get(r["outcome"], r["outcome"])
            how = "by the clock (deadline)" if r.get("trigger") == "clock" else "by an event"
            where = f"topic partition {r['topic_partition']} offset {r['topic_offset']}"
            if change == "decided":
                detail = f"decided {word} {how}, elapsed {_dur(_us(r.get('elapsed_s')))}; counts in {r['period']} " \
                         f"({where})"
                line.steps.append(Step(r["at_us"], word, detail, _us(r.get("elapsed_s")), r.get("deadline_us")))
            else:
                line.steps.append(Step(r["at_us"], "withdrawn", f"the {word} decided for this instant was withdrawn "
                                       f"(a reopen or a late event changed it; {where})", _us(r.get("elapsed_s")),
                                       r.get("deadline_us")))
        cal = model.calendars.get(name)
        end = line.decided_us if line.decided_us is not None else None
        if cal is not None and line.start_us is not None and end is not None:
            gaps = closed_gaps(cal, line.start_us, end)
            line.outside_hours_us = sum(b - a for a, b in gaps)
            for a, b in gaps[:MAX_GAP_STEPS]:
                line.steps.append(Step(a, "outside hours", f"closed until {_local(b, tz)} ({_dur(b - a)})"))
        line.steps.sort(key=lambda s: s.at_us)
        if current is None:
            line.why = ("no decision in force: the one decided was withdrawn (a reopen or a late event) and the item "
                        "has not been decided again; it counts in no period now")
        else:
            line.why = (f"{line.outcome} at {_local(line.decided_us, tz)}"
                        + ("" if line.margin_us is None else
                           f", {_dur(abs(line.margin_us))} {'before' if line.margin_us >= 0 else 'after'} the deadline")
                        + f"; counts in {line.period}")
        lines.append(line)
    notes = ["from the SLA record: individual pauses, priority changes and statuses are not stored (their effect "
             "is: elapsed and paused time); `slamon explain ITEM --events FILE` replays them"]
    return Explanation(client, item, kind, "store", None, tz, facts, lines, notes)


# --- words -----------------------------------------------------------------------------------------------

def _period(sla, at_us: int, tz: str) -> str:
    if isinstance(sla.period, Rolling):
        return f"{rolling_label(sla.period.rolling)} windows containing {format_us(at_us)}"
    return period_of(at_us, sla.period, tz).label


def _us(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * US)


def _fmt(us: int | None) -> str | None:
    return None if us is None else format_us(us)


def _dur(us: int | None) -> str:
    """A duration for people: 45 s, 12.5 s, 30m, 4h, 1h 30m, 2d 3h 5m (seconds shown below an hour)."""
    if us is None:
        return "-"
    sign = "-" if us < 0 else ""
    seconds = abs(us) / US
    if seconds < 60:
        return f"{sign}{seconds:.3g} s" if seconds < 10 else f"{sign}{seconds:.0f} s"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, sec = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{sec}s" if sec and not days and not hours else ""]
    return sign + " ".join(p for p in parts if p)


def _local(us: int | None, tz: str) -> str:
    if us is None:
        return "-"
    t = _dt.datetime.fromtimestamp(us / US, ZoneInfo(tz))
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond else "") + \
        t.strftime(" %Z")


def render_table(e: Explanation) -> str:
    """For people: one block per SLA, times in the client's timezone."""
    out = [f"{e.kind} {e.item} ({e.client}, times in {e.timezone})"
           + ("" if e.at_us is None else f", as of {_local(e.at_us, e.timezone)}")
           + f" - from {'a replay of the events' if e.source == 'events' else 'the SLA record'}"]
    instants = ("created", "offered", "answered", "abandoned", "ended")  # shown as steps, in local time
    facts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in e.facts.items()
                      if v not in (None, "", False) and k not in instants)
    if facts:
        out.append(f"  {facts}")
    for note in e.notes:
        out.append(f"  note: {note}")
    for line in e.slas:
        out.append("")
        head = f"{line.sla} ({line.kind}{', ' + line.time + ' time' if line.time else ''}): {line.outcome.upper()}"
        out.append(head)
        if line.why:
            out.append(f"  {line.why}")
        totals = [("priority", line.priority), ("target", _dur(line.target_us) if line.target_us else None),
                  ("elapsed", _dur(line.elapsed_us) if line.elapsed_us is not None else None),
                  ("paused", _dur(line.paused_us) if line.paused_us else None),
                  ("outside hours", _dur(line.outside_hours_us) if line.outside_hours_us else None),
                  ("resolved before a reopen", _dur(line.stopped_us) if line.stopped_us else None),
                  ("deadline", _local(line.deadline_us, e.timezone) if line.deadline_us else None),
                  ("period", line.period)]
        shown = [f"{k} {v}" for k, v in totals if v]
        if shown:
            out.append("  " + " · ".join(shown))
        if line.steps:
            width = max(len(s.what) for s in line.steps)
            for s in line.steps:
                clock = "" if s.elapsed_us is None else f"[{_dur(s.elapsed_us)}] "
                out.append(f"  {_local(s.at_us, e.timezone):<27} {s.what:<{width}}  {clock}{s.detail}")
    return "\n".join(out) + "\n"
