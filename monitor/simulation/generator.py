"""Realistic synthetic traffic for the clients of a contract file (`slamon produce --generate`).

`generate(contracts, cfg)` yields spec event dicts (section 1) in emission (arrival) order. Everything is
derived from the contracts: only their clients, ticket priorities/queues/channels, call queues and uptime
services are used, and a client only gets the kinds of traffic its SLAs measure (tickets for
first_response/resolution, calls for service_level/asa/abandon_rate/aht, probes for uptime, surveys for
csat, audits for accuracy).

Model
* Arrivals are Poisson, modulated by a daily curve in the client's timezone (`curve_weight`): quiet at
  night, a mid-morning peak, a lunch dip, an afternoon peak; weekends and the calendar's holidays at 30 %.
  The curve has a weekly mean of 1, so `tickets_per_hour` and `calls_per_hour` are weekly averages per
  client (split evenly over the client's ticket / call queues). The rate is piecewise constant over
  15-minute buckets (cut at scenario edges) and arrivals are drawn exactly for that rate.
* Calls: one FCFS multi-server queue per call queue. The roster follows the daily curve: `agents` agents
  at the weekday peak (0 = sized automatically, square-root staffing for the peak load), never fewer
  than a fifth of that (night cover). Each caller has an exponential patience (`mean_patience_seconds`),
  2 % hang up within 5 s (short abandons), answering takes a 1-4 s ring at least. Handle time: lognormal
  talk (85 % of `mean_handle_seconds`) + exponential wrap-up (15 %, sent as `wrapup_seconds`).
* Tickets: priorities with a realistic mix (P1 3 %, P2 12 %, P3 45 %, P4 40 % for four priorities, most
  urgent first in natural order). First reply and resolution are drawn as fractions of the applicable
  contract targets in the SLA's own clock (business or calendar time): a share `ticket_breach_rate` of
  tickets is planned late (1.05-2x the target), the rest early-skewed within it. 8 % are solved at first
  contact (no separate reply), 25 % wait once in one of the SLA's pause statuses (the pause is added to
  the wall time, so the plan holds), 5 % change priority (the plan uses the new target), 4 % are resolved,
  reopened and resolved again (the final outcome is the planned one), 85 % are closed 1-5 days later.
  A business-time SLA of a client whose calendar has no hours is planned on a 24/7 clock.
* Probes every probe interval per uptime service (the contract's, or `probe_interval_us`), with small
  jitter: `down` during an `outage` scenario and during the client's maintenance windows, 0.2 % single
  missed probes and rare runs of 4-7 missing probes (longer than the 3x "unknown" threshold).
* Surveys after a share `survey_rate` of resolved tickets and ended calls; scores are worse after a
  breach or a long wait. Audits every `audit_interval_us` with an error rate around 1 - target.
* Scenarios: `outage` (a service, or all of the client's, is down), `staffing_drop` (agents x factor on a
  queue, or all call queues; default 0.5), `backlog_surge` (ticket arrivals x factor; default 3.0).

Emission: per-source streams in event-time order are merged with heapq. With `disorder_us` > 0 every
event gets an arrival time in [ts, ts + disorder_us] and the stream is emitted in arrival order, so no
event arrives more than `disorder_us` after a later-timed one; with `keep_entity_order` (default) the
events of one ticket, call or service keep their order, as on a Kafka topic keyed by entity. A share
`duplicate_rate` of events is emitted twice (same dict content, same event_id), the copy within the same
bound. Timestamps are UTC with millisecond precision ("2026-03-02T09:15:03.120Z"). All randomness comes
from `random.Random` instances seeded from `cfg.seed` and the source's name: the output is a function of
(contracts, cfg) only. Events planned after the end of the window are not emitted; the window starts
empty (no tickets in flight).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.contracts import (
    AccuracySla,
    CallSla,
    Client,
    Contracts,
    CsatSla,
    TicketSla,
    UptimeSla,
)

US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 3600 * US
DAY_US = 86400 * US
BUCKET_US = 15 * MINUTE_US

# Relative arrival intensity per local hour of a weekday (value at the middle of the hour).
WEEKDAY_CURVE = (
    0.10, 0.07, 0.05, 0.05, 0.06, 0.12, 0.30, 0.65, 1.20, 1.65, 1.80, 1.65,
    1.20, 1.35, 1.60, 1.55, 1.30, 0.90, 0.60, 0.45, 0.35, 0.28, 0.20, 0.14,
)
WEEKEND_FACTOR = 0.3  # weekends and holidays
_WEEK_MEAN = sum(WEEKDAY_CURVE) * (5 + 2 * WEEKEND_FACTOR) / 168
PEAK_WEIGHT = max(WEEKDAY_CURVE) / _WEEK_MEAN

PRIORITY_MIX = {1: (1.0,), 2: (0.2, 0.8), 3: (0.08, 0.42, 0.5), 4: (0.03, 0.12, 0.45, 0.40)}
DEFAULT_FACTOR = {"outage": 0.0, "staffing_drop": 0.5, "backlog_surge": 3.0}
DEFAULT_CALL_QUEUE = "default"  # when call SLAs name no queue (they then cover every queue)
SCORES = (1, 2, 3, 4, 5)
SCORE_CUM_GOOD = (0.02, 0.04, 0.10, 0.40, 1.0)  # 90 % score >= 4, mean 4.4
SCORE_CUM_BAD = (0.15, 0.35, 0.60, 0.85, 1.0)  # after a breach or a long wait: 40 %, mean 3.05

# Lifecycle shares (see the module docstring).
P_FIRST_CONTACT = 0.08
P_PAUSE = 0.25
P_PRIORITY_CHANGE = 0.05
P_REOPEN = 0.04
P_CLOSE = 0.85
P_QUICK_HANGUP = 0.02
P_PROBE_MISS = 0.002
P_PROBE_GAP = 0.0002


@dataclass
class Scenario:
    """An injected incident for one client, from `start_us` for `duration_us`."""

    kind: Literal["outage", "staffing_drop", "backlog_surge"]
    client: str
    start_us: int
    duration_us: int
    factor: float | None = None  # staffing_drop: agents x factor (0.5); backlog_surge: arrivals x (3.0)
    service: str | None = None  # outage: that service only (default: every service of the client)
    queue: str | None = None  # staffing_drop / backlog_surge: that queue only (default: all)

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    @property
    def effective_factor(self) -> float:
        return DEFAULT_FACTOR[self.kind] if self.factor is None else self.factor


@dataclass
class GeneratorConfig:
    start_us: int
    duration_us: int
    seed: int = 0
    tickets_per_hour: float = 20.0  # per client, weekly average (scaled by the daily curve)
    calls_per_hour: float = 60.0  # per client, weekly average
    agents: int = 0  # agents per call queue at the weekday peak; 0 = sized for the load
    mean_handle_seconds: float = 300.0  # talk + wrap-up
    mean_patience_seconds: float = 120.0
    ticket_breach_rate: float = 0.03  # share of tickets replied/resolved after their deadline
    probe_interval_us: int | None = None  # None: each uptime SLA's probe_interval
    survey_rate: float = 0.2
    audit_interval_us: int = 4 * HOUR_US
    scenarios: list[Scenario] = field(default_factory=list)
    disorder_us: int = 0  # if > 0, events arrive up to this much after their event time, out of order
    duplicate_rate: float = 0.0  # re-emit that share of events verbatim (same event_id)
    keep_entity_order: bool = True  # with disorder: events of one ticket/call/service stay in order

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


# ----------------------------------------------------------------------------------------------------
# Daily curve and rate timeline


def curve_weight(local: datetime, holiday: bool = False) -> float:
    """Relative arrival intensity at a local time (weekly mean 1.0), linear between hour midpoints."""
    x = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    i = math.floor(x)
    frac = x - i
    w = WEEKDAY_CURVE[i % 24] * (1 - frac) + WEEKDAY_CURVE[(i + 1) % 24] * frac
    if holiday or local.weekday() >= 5:
        w *= WEEKEND_FACTOR
    return w / _WEEK_MEAN


def _holiday_dates(client: Client, first: date, last: date) -> set[date]:
    spec = client.calendar.holidays
    out = set(spec.dates)
    if spec.country:
        import holidays

        years = range(first.year, last.year + 1)
        out.update(holidays.country_holidays(spec.country, subdiv=spec.subdivision, years=years).keys())
    return out


def _timeline(start: int, end: int, tz: ZoneInfo, holidays: set[date], cuts: list[int]):
    """Bucket bounds (15 min grid + scenario edges) and the curve weight of each bucket."""
    bounds = {start, end}
    t = start - start % BUCKET_US + BUCKET_US
    while t < end:
        bounds.add(t)
        t += BUCKET_US
    bounds.update(c for c in cuts if start < c < end)
    ordered = sorted(bounds)
    weights = []
    for a, b in itertools.pairwise(ordered):
        local = datetime.fromtimestamp((a + b) / 2 / US, tz)
        weights.append(curve_weight(local, local.date() in holidays))
    return ordered, weights


def _arrivals(rng: random.Random, bounds: list[int], rates: list[float]) -> Iterator[tuple[float, int]]:
    """Poisson arrivals for a piecewise-constant rate (events per µs); yields (time, bucket index)."""
    expo = rng.expovariate
    n = len(rates)
    i = 0
    t = float(bounds[0])
    need = expo(1.0)
    while i < n:
        r = rates[i]
        if r > 0:
            avail = (bounds[i + 1] - t) * r
            if need <= avail:
                t += need / r
                yield t, i
                need = expo(1.0)
                continue
            need -= avail
        i += 1
        t = float(bounds[i]) if i < n else t


def _scenario_factor(scenarios: list[Scenario], kind: str, queue: str | None, a: int, b: int) -> float:
    f = 1.0
    for s in scenarios:
        if s.kind == kind and (s.queue is None or s.queue == queue) and s.start_us < b and a < s.end_us:
            f *= s.effective_factor
    return f


# ----------------------------------------------------------------------------------------------------
# SLA clocks (enough of them to place replies and resolutions relative to targets)


class _CalendarClock:
    @staticmethod
    def at(t: float) -> float:
        return t

    @staticmethod
    def when(v: float) -> float:
        return v


class _BusinessClock:
    """Business time as a cumulative clock over explicit intervals (UTC µs)."""

    def __init__(self, client: Client, tz: ZoneInfo, first: date, last: date, holidays: set[date]):
        weekly = client.calendar.weekly_minutes()
        starts, ends = [], []
        day = first
        while day <= last:
            if day not in holidays:
                midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
                for a, b in weekly.get(day.weekday(), ()):
                    s = int((midnight + timedelta(minutes=a)).timestamp() * US)
                    e = int((midnight + timedelta(minutes=b)).timestamp() * US)
                    if e > s:
                        starts.append(s)
                        ends.append(e)
            day += timedelta(days=1)
        self.starts, self.ends = starts, ends
        self.cum, self.cum_end = [], []
        total = 0
        for s, e in zip(starts, ends, strict=True):
            self.cum.append(total)
            total += e - s
            self.cum_end.append(total)

    def at(self, t: float) -> float:
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]

    def when(self, v: float) -> float:
        j = bisect_left(self.cum_end, v)
        if j >= len(self.cum_end):
            return math.inf
        return self.starts[j] + max(0.0, v - self.cum[j])


# ----------------------------------------------------------------------------------------------------
# Per-client plan


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [x / total for x in out]


class _ClientPlan:
    def __init__(self, name: str, client: Client, cfg: GeneratorConfig, scenarios: list[Scenario]):
        self.name = name
        self.client = client
        self.tz = ZoneInfo(client.timezone)
        self.scenarios = scenarios
        tickets = [s for s in client.slas if isinstance(s, TicketSla)]
        self.fr = [s for s in tickets if s.stops_on_agent_reply]
        self.res = [s for s in tickets if not s.stops_on_agent_reply]
        self.priorities = sorted({p for s in tickets for p in s.target}, key=_natural)
        n = len(self.priorities)
        mix = PRIORITY_MIX.get(n) or [2.0**i for i in range(n)]
        self.priority_cum = _cumulative(mix) if n else []
        self.ticket_queues: list[str | None] = sorted({q for s in tickets for q in s.queues}) or [None]
        self.channels = sorted({c for s in tickets for c in s.channels})
        calls = [s for s in client.slas if isinstance(s, CallSla)]
        self.call_queues = sorted({q for s in calls for q in s.queues}) or (
            [DEFAULT_CALL_QUEUE] if calls else [])
        self.services: dict[str, int] = {}
        for s in client.slas:
            if isinstance(s, UptimeSla):
                interval = cfg.probe_interval_us or s.probe_interval
                self.services[s.service] = min(interval, self.services.get(s.service, interval))
        self.csat = any(isinstance(s, CsatSla) for s in client.slas)
        self.accuracy = next((s.target for s in client.slas if isinstance(s, AccuracySla)), None)
        self.maintenance = [(w.span_us, frozenset(w.services)) for w in client.maintenance]

        first = datetime.fromtimestamp(cfg.start_us / US, self.tz).date() - timedelta(days=2)
        last = datetime.fromtimestamp(cfg.end_us / US, self.tz).date() + timedelta(days=2)
        self.holidays = _holiday_dates(client, first, last)
        cuts = [t for s in scenarios for t in (s.start_us, s.end_us)]
        self.bounds, self.weights = _timeline(cfg.start_us, cfg.end_us, self.tz, self.holidays, cuts)
        needs_business = any(s.time == "business" for s in tickets) and client.calendar.hours
        self.business = (_BusinessClock(client, self.tz, first, last + timedelta(days=60), self.holidays)
                         if needs_business else None)

    def clock(self, sla: TicketSla):
        if sla.time == "business" and self.business is not None:
            return self.business
        return _CalendarClock  # no business hours in the calendar: the clock runs 24/7

    @staticmethod
    def applicable(slas: list[TicketSla], queue, channel, priority) -> TicketSla | None:
        for s in slas:
            if ((not s.queues or queue in s.queues) and (not s.channels or channel in s.channels)
                    and priority in s.target):
                return s
        return None


_MINUTES: dict[int, str] = {}


def _fmt(us: int) -> str:
    """UTC RFC 3339 with milliseconds; the date-hour-minute prefix is cached."""
    s, rem = divmod(us, US)
    m, sec = divmod(s, 60)
    prefix = _MINUTES.get(m)
    if prefix is None:
        if len(_MINUTES) > 200_000:
            _MINUTES.clear()
        prefix = _MINUTES[m] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(m * 60))
    return f"{prefix}{sec:02d}.{rem // 1000:03d}Z"


def _pick(rng: random.Random, cum: list[float] | tuple[float, ...], items):
    return items[bisect_left(cum, rng.random() * cum[-1])]


# ----------------------------------------------------------------------------------------------------
# Sources: each yields (ts_us, source_id, n, event) in non-decreasing ts order


def _ticket_source(plan: _ClientPlan, queue: str | None, sid: int, cfg: GeneratorConfig, rng):
    end = cfg.end_us
    client = plan.name
    base_rate = cfg.tickets_per_hour / len(plan.ticket_queues) / HOUR_US
    rates = [base_rate * w * _scenario_factor(plan.scenarios, "backlog_surge", queue, a, b)
             for w, a, b in zip(plan.weights, plan.bounds, plan.bounds[1:], strict=False)]
    prefix = f"{client}-{queue}-T" if queue else f"{client}-T"
    heap: list = []
    n = 0
    push, pop = heapq.heappush, heapq.heappop
    arrivals = _arrivals(random.Random(rng.getrandbits(64)), plan.bounds, rates)
    for count, (t0, _) in enumerate(arrivals, 1):
        while heap and heap[0][0] <= t0:
            yield pop(heap)
        for t, ev in _ticket_lifecycle(plan, queue, f"{prefix}{count:06d}", t0, cfg, rng):
            tq = int(t)
            tq -= tq % 1000
            if tq >= end:
                break
            ev["ts"] = _fmt(tq)
            push(heap, (tq, sid, n, ev))
            n += 1
    while heap:
        yield pop(heap)


def _ticket_lifecycle(plan: _ClientPlan, queue, tid: str, t0: float, cfg: GeneratorConfig, rng):
    """Events of one ticket as (time, event) in order; `ts` is filled in by the caller."""
    client = plan.name
    rnd, uni = rng.random, rng.uniform
    breach_rate = cfg.ticket_breach_rate
    seq = 0

    def ev(t: float, type_: str, **extra) -> tuple[float, dict]:
        nonlocal seq
        seq += 1
        return t, {"event_id": f"{tid}-{seq}", "kind": "ticket", "client": client, "ts": "",
                   "ticket_id": tid, "type": type_, **extra}

    prios = plan.priorities
    prio = _pick(rng, plan.priority_cum, prios)
    channel = plan.channels[int(rnd() * len(plan.channels))] if plan.channels else None
    created = {"priority": prio}
    if queue:
        created["queue"] = queue
    if channel:
        created["channel"] = channel
    out = [ev(t0, "created", **created)]

    final = prio
    if len(prios) > 1 and rnd() < P_PRIORITY_CHANGE:
        i = prios.index(prio)
        i = i + 1 if i == 0 or (i < len(prios) - 1 and rnd() < 0.5) else i - 1
        final = prios[i]

    # First response.
    fr = plan.applicable(plan.fr, queue, channel, final)
    fr_breach = rnd() < breach_rate
    if fr is not None:
        clk = plan.clock(fr)
        target = fr.target[final]
        e = target * (uni(1.05, 2.0) if fr_breach else 0.03 + 0.94 * rnd() ** 2)
        t_reply = max(clk.when(clk.at(t0) + e), t0 + 20 * US)
    else:
        t_reply = t0 + 20 * US + rng.expovariate(1 / (2 * HOUR_US))

    # Resolution, in the resolution SLA's clock, never before the reply.
    res = plan.applicable(plan.res, queue, channel, final)
    res_breach = rnd() < breach_rate
    rclk = plan.clock(res) if res is not None else _CalendarClock
    c0 = rclk.at(t0)
    at_reply = rclk.at(t_reply) - c0 if t_reply < math.inf else math.inf
    if res is not None:
        target_r = res.target[final]
        if res_breach:
            total = max(target_r * uni(1.05, 1.8), at_reply + MINUTE_US)
        elif at_reply < target_r:
            total = at_reply + (target_r - at_reply) * (0.05 + 0.9 * rnd() ** 1.5)
        else:
            total = at_reply + MINUTE_US
        pauses = sorted(res.pause_statuses)
    else:
        total = at_reply + rng.lognormvariate(math.log(8 * HOUR_US), 1.0)
        pauses = []
    first_contact = not fr_breach and not res_breach and rnd() < P_FIRST_CONTACT
    if first_contact:
        total = at_reply
    v = c0 + total
    t_res = rclk.when(v)
    if t_reply >= math.inf:
        return out
    if first_contact:  # the clock may stand still at the reply instant (outside business hours)
        t_res = max(t_res, t_reply)

    if final != prio:
        first_stop = min(t_reply, t_res)
        out.append(ev(t0 + (first_stop - t0) * uni(0.1, 0.5), "priority", priority=final))
    if not first_contact:
        out.append(ev(t_reply, "agent_reply"))
        out.append(ev(t_reply, "status", status="in_progress"))
        after = t_reply
        if pauses and rnd() < P_PAUSE and t_res < math.inf:
            status = pauses[int(rnd() * len(pauses))]
            ps = t_reply + (t_res - t_reply) * uni(0.1, 0.7)
            pe = ps + max(5 * MINUTE_US, rng.expovariate(1 / (8 * HOUR_US)))
            v += rclk.at(pe) - rclk.at(ps)
            t_res = rclk.when(v)
            out.append(ev(ps, "status", status=status))
            if "customer" in status or "document" in status:
                out.append(ev(pe, "customer_reply"))
            out.append(ev(pe, "status", status="in_progress"))
            after = pe
        if rnd() < P_REOPEN and t_res < math.inf:
            c_after = rclk.at(after)
            t_r1 = rclk.when(c_after + (v - c_after) * uni(0.4, 0.9))
            t_r1 = max(t_r1, after)
            t_ro = t_r1 + uni(2 * HOUR_US, 3 * DAY_US)
            v += rclk.at(t_ro) - rclk.at(t_r1)
            t_res = rclk.when(v)
            out.append(ev(t_r1, "resolved"))
            out.append(ev(t_ro, "reopened"))
            out.append(ev(t_ro, "status", status="in_progress"))
    if t_res >= math.inf:
        return out
    out.append(ev(t_res, "resolved"))
    if plan.csat and rnd() < cfg.survey_rate:
        cum = SCORE_CUM_BAD if fr_breach or res_breach else SCORE_CUM_GOOD
        t_s = t_res + MINUTE_US + rng.expovariate(1 / (6 * HOUR_US))
        out.append((t_s, {"event_id": f"{tid}-s", "kind": "survey", "client": client, "ts": "",
                          "score": _pick(rng, cum, SCORES), "ticket_id": tid}))
    if rnd() < P_CLOSE:
        out.append(ev(t_res + uni(1 * DAY_US, 5 * DAY_US), "closed"))
    out.sort(key=_first)  # the survey may come after the close; ties keep their order
    return out


def _first(item):
    return item[0]


def auto_agents(calls_per_hour: float, queues: int, mean_handle_seconds: float) -> int:
    """Square-root staffing (load + sqrt(load)) for the weekday peak of one queue: ~90 % answered in 20 s."""
    load = calls_per_hour / max(queues, 1) * PEAK_WEIGHT * mean_handle_seconds / 3600
    return max(1, math.ceil(load + math.sqrt(load)))


def _call_source(plan: _ClientPlan, queue: str, sid: int, cfg: GeneratorConfig, rng):
    end = cfg.end_us
    client = plan.name
    nq = len(plan.call_queues)
    peak_agents = cfg.agents or auto_agents(cfg.calls_per_hour, nq, cfg.mean_handle_seconds)
    floor = max(1, math.ceil(peak_agents * 0.2))
    base_rate = cfg.calls_per_hour / nq / HOUR_US
    rates = [base_rate * w for w in plan.weights]
    staff = []
    for w, a, b in zip(plan.weights, plan.bounds, plan.bounds[1:], strict=False):
        rostered = max(floor, math.ceil(peak_agents * min(1.0, w / PEAK_WEIGHT)))
        f = _scenario_factor(plan.scenarios, "staffing_drop", queue, a, b)
        staff.append(max(1, round(rostered * f)))
    free = [0.0] * max(max(staff, default=1), peak_agents)
    talk_mean = cfg.mean_handle_seconds * 0.85 * US
    sigma = 0.5
    mu = math.log(talk_mean) - sigma * sigma / 2
    wrap_rate = 1 / (cfg.mean_handle_seconds * 0.15) if cfg.mean_handle_seconds > 0 else 1.0
    patience_rate = 1 / (cfg.mean_patience_seconds * US)
    rnd, uni, expo, logn = rng.random, rng.uniform, rng.expovariate, rng.lognormvariate
    survey_rate = cfg.survey_rate if plan.csat else 0.0
    prefix = f"{client}-{queue}-C"
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop
    n = 0
    count = 0
    for t, i in _arrivals(random.Random(rng.getrandbits(64)), plan.bounds, rates):
        tq = int(t)
        tq -= tq % 1000
        while heap and heap[0][0] <= tq:
            yield pop(heap)
        count += 1
        cid = f"{prefix}{count:07d}"
        k = staff[i]
        best, f = 0, free[0]
        for j in range(1, k):
            if free[j] < f:
                best, f = j, free[j]
        answer = max(t + uni(1 * US, 4 * US), f)
        patience = uni(0.5 * US, 5 * US) if rnd() < P_QUICK_HANGUP else expo(patience_rate)
        yield tq, sid, n, {"event_id": cid + "-o", "kind": "call", "client": client, "ts": _fmt(tq),
                           "call_id": cid, "queue": queue, "type": "offered"}
        n += 1
        if answer - t > patience:
            ta = int(t + patience)
            ta -= ta % 1000
            if ta < end:
                push(heap, (ta, sid, n, {"event_id": cid + "-x", "kind": "call", "client": client,
                                         "ts": _fmt(ta), "call_id": cid, "queue": queue,
                                         "type": "abandoned"}))
                n += 1
            continue
        talk = logn(mu, sigma)
        wrap = round(expo(wrap_rate), 1)
        ended = answer + talk
        free[best] = ended + wrap * US
        ta = int(answer)
        ta -= ta % 1000
        if ta >= end:
            continue
        push(heap, (ta, sid, n, {"event_id": cid + "-a", "kind": "call", "client": client, "ts": _fmt(ta),
                                 "call_id": cid, "queue": queue, "type": "answered"}))
        n += 1
        te = int(ended)
        te -= te % 1000
        if te >= end:
            continue
        push(heap, (te, sid, n, {"event_id": cid + "-e", "kind": "call", "client": client, "ts": _fmt(te),
                                 "call_id": cid, "queue": queue, "type": "ended", "wrapup_seconds": wrap}))
        n += 1
        if survey_rate and rnd() < survey_rate:
            ts_ = int(ended + uni(20 * US, 180 * US))
            ts_ -= ts_ % 1000
            if ts_ < end:
                cum = SCORE_CUM_BAD if answer - t > 60 * US else SCORE_CUM_GOOD
                push(heap, (ts_, sid, n, {"event_id": cid + "-s", "kind": "survey", "client": client,
                                          "ts": _fmt(ts_), "score": _pick(rng, cum, SCORES), "call_id": cid}))
                n += 1
    while heap:
        yield pop(heap)


def _probe_source(plan: _ClientPlan, service: str, interval: int, sid: int, cfg: GeneratorConfig, rng):
    client = plan.name
    down = [(s.start_us, s.end_us) for s in plan.scenarios
            if s.kind == "outage" and (s.service is None or s.service == service)]
    down += [span for span, services in plan.maintenance if not services or service in services]
    rnd, uni = rng.random, rng.uniform
    phase = cfg.start_us + int(uni(0, interval))
    jitter = interval // 100
    latency_mu = math.log(120.0)
    gap = 0
    k = 0
    n = 0
    while True:
        t = phase + k * interval + (int(uni(-jitter, jitter)) if jitter else 0)
        k += 1
        t -= t % 1000
        if t >= cfg.end_us:
            return
        if t < cfg.start_us:
            continue
        if gap:
            gap -= 1
            continue
        r = rnd()
        if r < P_PROBE_GAP:
            gap = rng.randint(3, 6)
            continue
        if r < P_PROBE_MISS:
            continue
        event = {"event_id": f"{client}-{service}-P{k:08d}", "kind": "probe", "client": client,
                 "ts": _fmt(t), "service": service}
        if any(a <= t < b for a, b in down):
            event["status"] = "down"
        else:
            event["status"] = "up"
            event["latency_ms"] = round(rng.lognormvariate(latency_mu, 0.4), 1)
        yield t, sid, n, event
        n += 1


def _audit_source(plan: _ClientPlan, sid: int, cfg: GeneratorConfig, rng):
    client = plan.name
    interval = cfg.audit_interval_us
    target = plan.accuracy
    k = 0
    while interval > 0:
        k += 1
        t = cfg.start_us + k * interval
        t -= t % 1000
        if t >= cfg.end_us:
            return
        items = rng.randint(80, 400)
        p = (1 - target) * rng.uniform(0.2, 1.5)
        rnd = rng.random
        errors = sum(1 for _ in range(items) if rnd() < p)
        yield t, sid, k, {"event_id": f"{client}-A{k:06d}", "kind": "audit", "client": client,
                          "ts": _fmt(t), "items": items, "errors": errors}


# ----------------------------------------------------------------------------------------------------


def _validate(contracts: Contracts, cfg: GeneratorConfig) -> None:
    if cfg.duration_us <= 0:
        raise ValueError("duration must be positive")
    if not 0 <= cfg.ticket_breach_rate <= 1 or not 0 <= cfg.duplicate_rate <= 1:
        raise ValueError("ticket_breach_rate and duplicate_rate are shares between 0 and 1")
    if cfg.disorder_us < 0:
        raise ValueError("disorder must not be negative")
    if min(cfg.tickets_per_hour, cfg.calls_per_hour, cfg.agents, cfg.survey_rate) < 0 or cfg.survey_rate > 1:
        raise ValueError("rates and agents must not be negative; survey_rate is a share")
    if cfg.mean_handle_seconds <= 0 or cfg.mean_patience_seconds <= 0:
        raise ValueError("mean handle time and patience must be positive")
    for s in cfg.scenarios:
        if s.kind not in DEFAULT_FACTOR:
            raise ValueError(f"unknown scenario kind {s.kind!r}")
        if s.client not in contracts.clients:
            raise ValueError(f"scenario client {s.client!r} is not in the contracts")
        if s.duration_us <= 0:
            raise ValueError("scenario duration must be positive")
        if s.effective_factor < 0:
            raise ValueError("scenario factor must not be negative")


def generate(contracts: Contracts, cfg: GeneratorConfig) -> Iterator[dict]:
    """Event dicts in emission (arrival) order; see the module docstring for the model."""
    _validate(contracts, cfg)
    sources = []
    for name, client in contracts.clients.items():
        scenarios = [s for s in cfg.scenarios if s.client == name]
        plan = _ClientPlan(name, client, cfg, scenarios)
        for s in scenarios:
            if s.kind == "outage" and s.service is not None and s.service not in plan.services:
                raise ValueError(f"outage service {s.service!r} is not an uptime service of {name!r}")
            if s.kind == "staffing_drop" and s.queue is not None and s.queue not in plan.call_queues:
                raise ValueError(f"staffing_drop queue {s.queue!r} is not a call queue of {name!r}")
            if s.kind == "backlog_surge" and s.queue is not None and s.queue not in plan.ticket_queues:
                raise ValueError(f"backlog_surge queue {s.queue!r} is not a ticket queue of {name!r}")

        def rng(tag: str, name=name) -> random.Random:
            return random.Random(f"{cfg.seed}:{name}:{tag}")

        if plan.priorities:
            for q in plan.ticket_queues:
                sources.append(_ticket_source(plan, q, len(sources), cfg, rng(f"tickets:{q}")))
        for q in plan.call_queues:
            sources.append(_call_source(plan, q, len(sources), cfg, rng(f"calls:{q}")))
        for service, interval in sorted(plan.services.items()):
            sources.append(_probe_source(plan, service, interval, len(sources), cfg, rng(f"probe:{service}")))
        if plan.accuracy is not None:
            sources.append(_audit_source(plan, len(sources), cfg, rng("audits")))
    merged = heapq.merge(*sources)
    if cfg.disorder_us <= 0 and cfg.duplicate_rate <= 0:
        for item in merged:
            yield item[3]
        return
    yield from _arrival_order(merged, cfg)


def _entity(event: dict) -> str | None:
    kind = event["kind"]
    if kind == "ticket":
        return "t" + event["ticket_id"]
    if kind == "call":
        return "c" + event["call_id"]
    if kind == "probe":
        return "p" + event["client"] + "\0" + event["service"]
    return None


def _arrival_order(merged, cfg: GeneratorConfig) -> Iterator[dict]:
    """Give each event an arrival time in [ts, ts + disorder] (and duplicates) and emit by arrival."""
    rng = random.Random(f"{cfg.seed}:arrival")
    rnd, randrange = rng.random, rng.randrange
    bound = max(cfg.disorder_us, 0)
    dup = cfg.duplicate_rate
    keep = cfg.keep_entity_order
    last: dict[str, int] = {}
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    for t, _, _, event in merged:
        while heap and heap[0][0] <= t:
            yield pop(heap)[2]
        a = t + randrange(bound + 1) if bound else t
        if keep and bound:
            key = _entity(event)
            if key is not None:
                prev = last.get(key, 0)
                if prev > a:
                    a = prev
                last[key] = a
                if len(last) > 200_000:  # entries older than now can no longer hold anything back
                    last = {k: v for k, v in last.items() if v > t}
        push(heap, (a, seq, event))
        seq += 1
        if dup and rnd() < dup:
            a2 = a + randrange(t + bound - a + 1)
            push(heap, (a2, seq, dict(event)))
            seq += 1
    while heap:
        yield pop(heap)[2]
