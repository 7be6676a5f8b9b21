"""The monthly SLA review for account managers (`slamon report`): pure, built from a replay.

    at = review_at(contracts, "2026-11", newest_us=...)      # the instant the review is "as of"
    result = replay_lines(lines, contracts, at, engine)       # the same replay as `slamon replay --at`
    review = build_review(result, engine, "2026-11")          # per client, per SLA; no I/O

Every figure of the reviewed month is a record of that replay, unchanged (tests pin this); the review only
selects, groups and explains them. Rules (documented in docs/monthly-review.md):

* **Which contract periods belong to a month.** Monthly SLAs: the calendar month in the client's timezone.
  Weekly SLAs: the ISO weeks whose Thursday falls in the month (the ISO-8601 year rule applied to months),
  so every week belongs to exactly one month and no credit is counted twice; the first days of a month
  can belong to the previous month's last week. Daily SLAs: the days of the month. Rolling SLAs: the
  window ending at the review instant (for a complete month: its last instant).
* **Review instant** = the end of the last contract period of the month (weeks may end a few days after
  the month) minus 1 µs, or the newest event time if the events stop earlier ("month to date").
* An SLA is **met** for the month when every contract period of the month is met (an empty period is
  met, as in the report). Credits are the sum of the periods' credits as the report computes them.
* **Trend** covers the `trend` months ending with the reviewed month, with the SLA's own contract periods
  (weekly SLAs show weeks, rolling SLAs their value at each month's end, as `slamon replay --at` would).
* **Misses per day**: decisions that went bad per local day (tickets late, calls answered after T,
  abandons, low survey scores, audit errors) and minutes of downtime for uptime SLAs.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from monitor.contracts import Contracts, Rolling, TicketSla, UptimeSla
from monitor.engine import Engine
from monitor.errors import SlamonError
from monitor.events import format_us, to_us
from monitor.ledger import BUCKET_US, Tally
from monitor.periods import PeriodWindow, period_of, periods_between, rolling_window
from monitor.replay import ReplayResult
from monitor.report import Record, _ledger_records
from monitor.report import _value as _report_value

US = 1_000_000
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
DEFAULT_TREND = 6
LOW_MARGIN = 0.25  # "met with little margin": less than this share of the error budget left

class ReviewError(SlamonError, ValueError):
    """A review that cannot be built (bad month, unknown client, no data): the message says why."""


# --- months and contract periods -------------------------------------------------------------------------

def parse_month(text: str) -> tuple[int, int]:
    m = MONTH_RE.match(text)
    if not m:
        raise ReviewError(f"--period expects a month like 2026-11, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def month_name(label: str) -> str:
    year, month = parse_month(label)
    return f"{MONTH_NAMES[month - 1]} {year}"


def shift_month(label: str, delta: int) -> str:
    year, month = parse_month(label)
    index = year * 12 + month - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_window(label: str, tz: str) -> PeriodWindow:
    """The calendar month `label` in timezone `tz`, as [start, end) instants."""
    year, month = parse_month(label)
    noon = _dt.datetime(year, month, 15, 12, tzinfo=ZoneInfo(tz))
    return period_of(to_us(noon), "month", tz)


def month_of_window(window: PeriodWindow, period: str) -> str:
    """The month a contract period belongs to (see the module docstring)."""
    if period == "month":
        return window.label
    if period == "week":
        year, week = window.label.split("-W")
        thursday = _dt.date.fromisocalendar(int(year), int(week), 4)
        return f"{thursday.year:04d}-{thursday.month:02d}"
    return window.label[:7]  # day: 2026-11-23


def windows_of_month(label: str, period: str, tz: str) -> list[PeriodWindow]:
    """The contract periods (month, week or day windows) that belong to month `label`."""
    month = month_window(label, tz)
    # weeks belonging to the month may end up to 3 days after it (Thursday rule): look a week further
    candidates = periods_between(month.start_us, month.end_us + 7 * 86_400 * US, period, tz)
    return [w for w in candidates if month_of_window(w, period) == label]


def review_at(contracts: Contracts, month: str, clients: list[str] | None = None,
              newest_us: int | None = None) -> int:
    """The review instant: the last instant of the month's contract periods (the latest over the selected
    clients' SLAs), or `newest_us` (the newest event time) if the events stop before it."""
    end = 0
    for name in clients or list(contracts.clients):
        client = contracts.clients[name]
        end = max(end, month_window(month, client.timezone).end_us)
        for sla in client.slas:
            if not isinstance(sla.period, Rolling):
                for w in windows_of_month(month, sla.period, client.timezone):
                    end = max(end, w.end_us)
    at = end - 1
    return at if newest_us is None else min(at, newest_us)


# --- the review ------------------------------------------------------------------------------------------

@dataclass
class TrendPoint:
    label: str  # the contract period (2026-11, 2026-W47, 2026-11-23) or the month of a rolling value
    start_us: int
    end_us: int
    month: str  # the month the point belongs to
    value: float | None
    met: bool
    decided: float
    p90: float | None = None  # the 90th percentile of response, resolution, wait or handle time (seconds)
    partial: bool = False  # the data covers only part of the period (it starts later, or the period is running)


@dataclass
class GroupRow:
    """An SLA's figures for the items of one queue or one channel, over the month's contract periods."""

    dimension: str  # "queue" | "channel"
    name: str
    decided: float
    good: float | None  # None where items are not judged one by one (a mean time or score)
    bad: float | None
    value: float | None  # the SLA's measure over these items: compliance, a mean time, an abandon rate
    met: bool  # the value meets the SLA's target (which applies to all items together: indicative only)


@dataclass
class BreachReasons:
    """Why an SLA's tickets of the month breached (ticket SLAs), from what every breach record states: its clock's
    elapsed SLA time against the target, and the SLA time it spent paused. Durations are SLA time: business hours on
    a business-hours SLA, wall-clock time on a calendar-time SLA (as the target counts)."""

    breached: int  # the tickets breached in the month's contract periods (= len(SlaReview.breaches))
    open_at_deadline: int  # the clock ran out: still without a reply / resolution when the deadline passed
    priority_change: int  # a priority change gave a target the clock had already passed (breached at the change)
    over_median: float | None  # how far past the new target those were at the change (seconds of SLA time)
    over_p90: float | None
    paused: int  # breached tickets whose clock was paused for a while (waiting statuses, or resolved then reopened)
    paused_median: float | None  # their paused SLA time (seconds)
    paused_p90: float | None
    unknown: int = 0  # breaches whose record lacks the clock facts (records of older workers)


AGE_BANDS = ((0, "< 1 day"), (86_400 * US, "1–3 days"), (3 * 86_400 * US, "3–7 days"), (7 * 86_400 * US, "7–30 days"),
             (30 * 86_400 * US, "30 days or more"))  # (lower bound of the ticket's age, label): calendar time


@dataclass
class BacklogRow:
    priority: str
    bands: list[int]  # tickets per AGE_BANDS band
    past: list[int]  # of them, per band, those already past this SLA's deadline

    @property
    def total(self) -> int:
        return sum(self.bands)

    @property
    def past_deadline(self) -> int:
        return sum(self.past)


@dataclass
class SlaReview:
    client: str
    sla: str
    kind: str
    contract: object  # the contract's SLA (monitor.contracts): its facts (nouns, units) in one place
    title: str  # "Resolution", "Service level (20 s)", ...
    unit: str | None  # ratio | seconds | score
    target: float
    lower_is_better: bool
    period: str  # month | week | day | rolling-30d
    records: list[Record]  # the replay records of the month's contract periods (synthesized when empty)
    trend: list[TrendPoint]
    breaches: list[tuple[int, str]]  # (decision instant, ticket id), ticket kinds
    daily: list[float | None] | None  # misses per local day of the client's days (None: no misses for this kind;
    # a None day lies outside this SLA's contract periods of the month)
    daily_unit: str | None
    display: str = ""  # the name people read: the kind's title, or the SLA's own name where titles repeat
    priorities: list[tuple[str, float, float, float]] = field(default_factory=list)  # (priority, decided, good,
    # bad) over the month's contract periods (ticket SLAs)
    breach_priority: dict[str, str] = field(default_factory=dict)  # breached ticket id -> its priority when it
    # breached (needs ReviewEngine or the SLA record; empty with a plain Engine)
    groups: list[GroupRow] = field(default_factory=list)  # per queue, then per channel, over the month's contract
    # periods (ticket and call SLAs; needs the engine's tallies per queue: monitor.review.groups.ReviewEngine)
    breach_reasons: BreachReasons | None = None  # ticket SLAs with breaches (needs ReviewEngine or the SLA record)
    backlog: list[BacklogRow] | None = None  # ticket SLAs: the tickets still open at the review instant, per
    # priority (highest first) and age; None when the source holds no open tickets (the SLA record)
    penalty_fee: float | None = None
    currency: str | None = None
    credits: float = 0.0
    credit_percent: float = 0.0  # the largest credit percent of the month's periods
    projected_credits: float = 0.0

    @property
    def decided(self) -> float:
        return sum(r.decided for r in self.records)

    @property
    def has_data(self) -> bool:
        return any(r.decided for r in self.records)

    @property
    def met(self) -> bool:
        return all(r.met for r in self.records)

    @property
    def missed_records(self) -> list[Record]:
        return [r for r in self.records if not r.met]

    @property
    def worst(self) -> Record | None:
        """The record furthest from the target (the month's only record for monthly SLAs)."""
        measured = [r for r in self.records if r.value is not None]
        if not measured:
            return None
        pick = max if self.lower_is_better else min
        return pick(measured, key=lambda r: r.value)

    @property
    def value(self) -> float | None:
        worst = self.worst
        return None if worst is None else worst.value

    @property
    def budget_left(self) -> float | None:
        worst = self.worst
        return None if worst is None else worst.error_budget_remaining

    @property
    def breached_ids(self) -> list[str]:
        return sorted({item for r in self.records for item in (r.breaches or ())})

    def previous(self, month: str) -> tuple[bool, float | None] | None:
        """(met, worst value) of the SLA in `month`, from the trend; None without data then."""
        points = [p for p in self.trend if p.month == month and p.decided]
        if not points:
            return None
        values = [p.value for p in points if p.value is not None]
        worst = (max if self.lower_is_better else min)(values) if values else None
        return all(p.met for p in points), worst


@dataclass
class ClientReview:
    client: str
    timezone: str
    month: str
    start_us: int
    end_us: int
    complete: bool
    slas: list[SlaReview]
    days: list[_dt.date]  # the local days of the month and of the weeks its weekly SLAs count (Thursday rule)
    headline: str = ""
    notes: list[str] = field(default_factory=list)
    data_from_us: int | None = None  # when the figures start, if after the month's first contract period begins
    backlog_unavailable: str | None = None  # why the review has no open-ticket backlog (built from the SLA record)

    @property
    def credits(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.slas:
            if s.currency and s.credits:
                out[s.currency] = out.get(s.currency, 0.0) + s.credits
        return out

    @property
    def met_count(self) -> tuple[int, int]:
        with_data = [s for s in self.slas if s.has_data]
        return sum(s.met for s in with_data), len(with_data)

    @property
    def summary(self) -> str:
        return self.headline


@dataclass
class Review:
    month: str
    at_us: int
    trend_months: int
    clients: list[ClientReview]
    pipeline: dict
    not_started: list[str] = field(default_factory=list)  # clients whose month starts after the events end
    data_start_us: int | None = None  # the first decision the figures hold (earlier periods are partial)

    @property
    def complete(self) -> bool:
        return all(c.complete for c in self.clients)


def build_review(result: ReplayResult, engine: Engine, month: str, clients: list[str] | None = None,
                 trend: int = DEFAULT_TREND, data_start_us: int | None = None) -> Review:
    """The review of `month` from a replay (`result`) and the engine that replay ran (`engine`). `data_start_us`:
    the first instant the figures cover (default: the engine's first decision); a trend period that starts
    before it is marked partial."""
    parse_month(month)
    if trend < 1:
        raise ReviewError("--trend must be at least 1")
    contracts = engine.contracts
    names = clients or list(contracts.clients)
    for name in names:
        if name not in contracts.clients:
            raise ReviewError(f"client {name!r} is not in the contracts (known: {', '.join(contracts.clients)})")
    at = result.at_us
    if data_start_us is None:
        data_start_us = min((b for lg in engine.ledgers.values() for b in lg.buckets), default=at // BUCKET_US) \
            * BUCKET_US
    index = {(r.client, r.sla, r.period): r for r in result.records}
    backlogs = open_backlog(engine, names, at)
    reviews, not_started = [], []
    for name in names:
        client = contracts.clients[name]
        tz = client.timezone
        mwin = month_window(month, tz)
        if at < mwin.start_us:  # the month has not begun in this client's timezone
            not_started.append(name)
            continue
        first, last = mwin.start_us, mwin.end_us
        for sla in client.slas:  # weeks counted in the month may begin before it or end after it
            if not isinstance(sla.period, Rolling):
                for w in windows_of_month(month, sla.period, tz):
                    if w.start_us <= at:
                        first, last = min(first, w.start_us), max(last, w.end_us)
        day_windows = periods_between(first, last, "day", tz)
        days = [_dt.date.fromisoformat(w.label) for w in day_windows]
        names_shown = display_names(client.slas)
        slas = [_sla_review(engine, index, name, tz, sla, month, mwin, at, trend, day_windows, data_start_us,
                            names_shown[sla.name]) for sla in client.slas]
        for s in slas:
            if isinstance(s.contract, TicketSla):
                rows = backlogs.get((name, s.sla), {})
                s.backlog = [rows[p] for p in sorted(rows, key=_priority_key)]
        cr = ClientReview(client=name, timezone=tz, month=month, start_us=mwin.start_us, end_us=mwin.end_us,
                          complete=all(r.complete for s in slas for r in s.records), slas=slas, days=days)
        starts = [r.start_us for s in slas if not isinstance(s.contract.period, Rolling) for r in s.records]
        if data_start_us > min([mwin.start_us, *starts]):
            cr.data_from_us = data_start_us
        cr.headline, cr.notes = summarize(cr, at)
        reviews.append(cr)
    if not reviews:
        raise not_begun(at, month, not_started, contracts)
    return Review(month=month, at_us=at, trend_months=trend, clients=reviews, pipeline=result.pipeline(),
                  not_started=not_started, data_start_us=data_start_us)


def not_begun(at_us: int, month: str, not_started: list[str], contracts: Contracts) -> ReviewError:
    """The error of a review none of whose clients has begun `month` by `at_us`."""
    return ReviewError(f"the events end at {format_us(at_us)}, before {month_name(month)} starts"
                       + (f" for {', '.join(not_started)}" if len(not_started) < len(contracts.clients) else ""))


_ACRONYMS = {"csat", "ivr", "aht", "asa", "sla", "sl", "api", "vip", "it", "kyc", "nps"}


def display_names(slas) -> dict[str, str]:
    """What people read for each SLA of a client: the kind's title ("Resolution", "Service level (20 s)"), or, where
    two SLAs share a title, the SLA's own name in words ("Fraud resolution", "Dispute resolution")."""
    titles = [sla.title for sla in slas]
    out = {}
    for sla in slas:
        if titles.count(sla.title) == 1:
            out[sla.name] = sla.title
            continue
        words = sla.name.replace("_", "-").split("-")
        words = [w.upper() if w.lower() in _ACRONYMS else w for w in words if w]
        text = " ".join(words)
        out[sla.name] = text[:1].upper() + text[1:]
    return out


def _sla_review(engine: Engine, index: dict, client: str, tz: str, sla, month: str, mwin: PeriodWindow,
                at: int, trend: int, day_windows: list[PeriodWindow], data_start_us: int,
                display: str) -> SlaReview:
    rolling = isinstance(sla.period, Rolling)
    if rolling:
        period_name = rolling_window(at, sla.period.rolling).label
        records = [index[(client, sla.name, period_name)]]
    else:
        period_name = sla.period
        records = [index.get((client, sla.name, w.label)) or _empty_record(client, sla, w, at)
                   for w in windows_of_month(month, sla.period, tz) if w.start_us <= at]
    review = SlaReview(
        client=client, sla=sla.name, kind=sla.kind, contract=sla, title=sla.title, unit=sla.unit, target=sla.goal,
        lower_is_better=sla.lower_is_better, period=period_name, records=records,
        trend=_trend(engine, index, client, tz, sla, month, at, trend, records, data_start_us),
        breaches=[], daily=None, daily_unit=sla.miss_noun, display=display,
    )
    if sla.penalty is not None:
        review.penalty_fee, review.currency = sla.penalty.monthly_fee, sla.penalty.currency
        review.credits = round(sum(r.penalty["credit"] for r in records if r.penalty), 2)
        review.credit_percent = max((r.penalty["credit_percent"] for r in records if r.penalty), default=0.0)
        review.projected_credits = round(sum(
            r.penalty["projected_credit"] if not r.complete else r.penalty["credit"] for r in records if r.penalty
        ), 2)
    # the days this SLA's figures cover: its contract periods of the month (a rolling window: the month's days in it)
    if rolling:
        spans = [(max(records[0].start_us, mwin.start_us), min(records[0].end_us, mwin.end_us))]
    else:
        spans = [(r.start_us, r.end_us) for r in records]
    if isinstance(sla, UptimeSla):
        review.daily = _daily_downtime(engine, client, sla, day_windows, spans, at)
    elif sla.miss_noun is not None:
        ledger = engine.ledgers[(client, sla.name)]
        review.daily = _daily_bad(ledger, day_windows, spans)
        if sla.has_item_clocks:
            ids = set(review.breached_ids)
            listed = [pair for label in ({"rolling"} if rolling else {r.period for r in records})
                      for pair in ledger.breaches.get(label, ())]
            review.breaches = sorted(
                (a, item) for a, item in listed if item in ids and any(r.start_us <= a < r.end_us for r in records))
            known = getattr(engine, "breach_priorities", {})
            review.breach_priority = {item: p for _, item in review.breaches
                                      if (p := known.get((client, sla.name, item))) is not None}
            facts = getattr(engine, "breach_facts", None)
            if facts is not None:
                review.breach_reasons = breach_reasons(review.breaches, {
                    item: f for _, item in review.breaches if (f := facts.get((client, sla.name, item))) is not None})
    if sla.has_item_clocks and not rolling:
        ledger = engine.ledgers[(client, sla.name)]
        labels = {r.period for r in records}
        totals: dict[str, list[float]] = {}
        for (label, priority), tally in ledger.by_priority.items():
            if label in labels and not tally.empty:
                acc = totals.setdefault(priority, [0, 0, 0])
                acc[0] += tally.decided
                acc[1] += tally.good
                acc[2] += tally.bad
        review.priorities = [(p, *totals[p]) for p in sorted(totals, key=_priority_key)]
    if not rolling:
        review.groups = _group_rows(sla, getattr(engine, "groups", {}).get((client, sla.name), {}),
                                    {r.period for r in records})
    return review


def open_backlog(engine: Engine, clients: list[str], at: int) -> dict[tuple[str, str], dict[str, BacklogRow]]:
    """The tickets still open at `at` (created, neither resolved nor closed, or reopened), per (client, ticket SLA
    that covers them) and the priority the SLA counts them under, by age since creation (calendar time, AGE_BANDS);
    past the deadline: the SLA's clock breached, or running past its deadline. One pass over the engine's tickets
    (resolved tickets past their reopen window are no longer held: they are not open)."""
    wanted = set(clients)
    out: dict[tuple[str, str], dict[str, BacklogRow]] = {}
    for (client, _), item in engine.tickets.items():
        state = item.state
        if client not in wanted or state.created_us is None or state.resolved or state.created_us > at:
            continue
        age = at - state.created_us
        band = max(i for i, (lower, _) in enumerate(AGE_BANDS) if age >= lower)
        for clock in state.clocks:
            rows = out.setdefault((client, clock.sla.name), {})
            row = rows.get(clock.priority)
            if row is None:
                row = rows[clock.priority] = BacklogRow(clock.priority, [0] * len(AGE_BANDS), [0] * len(AGE_BANDS))
            row.bands[band] += 1
            if clock.good is False or (clock.open and clock.deadline_us is not None and clock.deadline_us <= at):
                row.past[band] += 1
    return out


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile (an actual value: the same on every path that holds the same values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def breach_reasons(breaches: list[tuple[int, str]], facts: dict[str, tuple]) -> BreachReasons | None:
    """`BreachReasons` of the breached tickets `breaches` ((instant, id)) from their clock facts (id -> (elapsed_s,
    target_s, paused_s), `ReviewEngine.breach_facts` or the SLA record's columns). None without breaches."""
    if not breaches:
        return None
    over, paused, unknown = [], [], 0
    for _, item in breaches:
        elapsed, target, pause = facts.get(item, (None, None, None))
        if elapsed is None or target is None:
            unknown += 1
            continue
        if elapsed > target:
            over.append(elapsed - target)
        if pause:
            paused.append(pause)
    n = len(breaches)
    return BreachReasons(breached=n, open_at_deadline=n - unknown - len(over), priority_change=len(over),
                         over_median=quantile(over, 0.5), over_p90=quantile(over, 0.9), paused=len(paused),
                         paused_median=quantile(paused, 0.5), paused_p90=quantile(paused, 0.9), unknown=unknown)


def _group_rows(sla, table: dict, labels: set[str]) -> list[GroupRow]:
    """The SLA's tallies per queue and per channel (`ReviewEngine.groups`) summed over the periods `labels`: queues
    first, then channels, each by name."""
    sums: dict[tuple[str, str], Tally] = {}
    for (label, dimension, name), tally in table.items():
        if label in labels and not tally.empty:
            sums.setdefault((dimension, name), Tally()).merge(tally)
    rows = []
    for (dimension, name), tally in sorted(sums.items(), key=lambda kv: (kv[0][0] != "queue", kv[0])):
        if not tally.decided:
            continue
        value, _ = _report_value(sla, tally)
        target = sla.goal
        rows.append(GroupRow(
            dimension=dimension, name=name, decided=tally.decided,
            good=tally.good if sla.judges_items else None, bad=tally.bad if sla.judges_items else None,
            value=value, met=True if value is None else (value <= target if sla.lower_is_better else value >= target)))
    return rows


def top_breaches(s: SlaReview, n: int) -> list[tuple[int, str]]:
    """The `n` breached tickets to show first: the highest priority (P1 before P2; unknown last), then the earliest."""
    unknown = (10**9, "")
    return sorted(s.breaches, key=lambda b: (_priority_key(s.breach_priority[b[1]]) if b[1] in s.breach_priority
                                             else unknown, b))[:n]


def _priority_key(priority: str) -> tuple:
    digits = "".join(ch for ch in priority if ch.isdigit())
    return (int(digits) if digits else 10**6, priority)


def _empty_record(client: str, sla, window: PeriodWindow, at: int) -> Record:
    """What the report says about a period without decisions (it lists only periods with some)."""
    penalty = None
    if sla.penalty is not None:
        penalty = {"currency": sla.penalty.currency, "monthly_fee": sla.penalty.monthly_fee, "credit_percent": 0.0,
                   "credit": 0.0, "projected_credit_percent": 0.0, "projected_credit": 0.0}
    return Record(
        client=client, sla=sla.name, kind=sla.kind, period=window.label, start_us=window.start_us,
        end_us=window.end_us, complete=window.end_us <= at + 1, decided=0,
        good=0 if sla.judges_items else None, bad=0 if sla.judges_items else None,
        compliance=None, target=sla.goal, met=True,
        error_budget_remaining=None if sla.unit == "score" else 1.0,  # a mean score has no budget
        value=None, unit=sla.unit, penalty=penalty, breaches=[] if sla.has_item_clocks else None,
    )


def _p90(rec: Record | None) -> float | None:
    return None if rec is None or not rec.latency_seconds else rec.latency_seconds.get("p90")


def _trend(engine: Engine, index: dict, client: str, tz: str, sla, month: str, at: int, trend: int,
           current: list[Record], data_start_us: int) -> list[TrendPoint]:
    months = [shift_month(month, -k) for k in range(trend - 1, -1, -1)]
    if isinstance(sla.period, Rolling):
        points = []
        for m in months[:-1]:
            end = month_window(m, tz).end_us - 1
            if end > at:
                continue
            rec = _rolling_record(engine, client, sla, end)
            w = rolling_window(end, sla.period.rolling)
            points.append(TrendPoint(m, w.start_us, w.end_us, m, rec.value, rec.met, rec.decided, _p90(rec),
                                     w.start_us < data_start_us))
        rec = current[0]
        w = rolling_window(at, sla.period.rolling)
        points.append(TrendPoint(month, w.start_us, w.end_us, month, rec.value, rec.met, rec.decided, _p90(rec),
                                 w.start_us < data_start_us or not rec.complete))
        return points
    points = []
    for m in months:
        for w in windows_of_month(m, sla.period, tz):
            if w.start_us > at:
                continue
            partial = w.start_us < data_start_us or w.end_us > at + 1
            rec = index.get((client, sla.name, w.label))
            if rec is None:
                points.append(TrendPoint(w.label, w.start_us, w.end_us, m, None, True, 0, None, partial))
            else:
                points.append(TrendPoint(w.label, w.start_us, w.end_us, m, rec.value, rec.met, rec.decided,
                                         _p90(rec), partial))
    return points


def _rolling_record(engine: Engine, client: str, sla, at: int) -> Record:
    """The rolling SLA's record as `slamon replay --at` would give it at an earlier instant `at` (the
    ledgers keep every decision instant, so the window is exact)."""
    if isinstance(sla, UptimeSla):
        # the window (at - length, at] itself: `_uptime_records` integrates up to `at`, 1 us short of a month's
        # end, which cuts a 15-minute bucket whose probes an engine may have folded already
        ledger = next(lg for lg in engine.clients[client].uptime[sla.service] if lg.sla is sla)
        w = rolling_window(at, sla.period.rolling)
        t = ledger.between(w.start_us, w.end_us)
        value = t.up_us / t.known_us if t.known_us else None
        return Record(client=client, sla=sla.name, kind=sla.kind, period=w.label, start_us=w.start_us,
                      end_us=w.end_us, complete=True, decided=t.known_us / US, good=t.up_us / US,
                      bad=t.down_us / US, compliance=value, target=sla.target,
                      met=True if value is None else value >= sla.target, error_budget_remaining=None, value=value,
                      unit="ratio")
    return _ledger_records(engine, engine.ledgers[(client, sla.name)], sla, at)[0]


def _bad_between(ledger, lo: int, hi: int) -> float:
    """Bad decisions with lo <= at < hi: whole 15-minute buckets, or the exact window at a cut edge."""
    if hi <= lo:
        return 0.0
    if lo % BUCKET_US == 0 and hi % BUCKET_US == 0:
        buckets = ledger.buckets
        return sum(t.bad for b in range(lo // BUCKET_US, hi // BUCKET_US) if (t := buckets.get(b)) is not None)
    return ledger.window(lo, hi).bad


def _daily_bad(ledger, day_windows: list[PeriodWindow], spans: list[tuple[int, int]]) -> list[float | None]:
    """Bad decisions per local day of the client's days, counted only inside the SLA's contract periods of the
    month (`spans`), so the days add up to the periods' figures; None for a day outside them."""
    out: list[float | None] = []
    for day in day_windows:
        parts = [(max(day.start_us, a), min(day.end_us, b)) for a, b in spans if a < day.end_us and day.start_us < b]
        out.append(sum(_bad_between(ledger, lo, hi) for lo, hi in parts) if parts else None)
    return out


def _daily_downtime(engine: Engine, client: str, sla: UptimeSla, day_windows: list[PeriodWindow],
                    spans: list[tuple[int, int]], at: int) -> list[float | None]:
    ledger = next(lg for lg in engine.clients[client].uptime[sla.service] if lg.sla is sla)
    out: list[float | None] = []
    for day in day_windows:
        parts = [(max(day.start_us, a), min(day.end_us, b, at)) for a, b in spans
                 if a < day.end_us and day.start_us < b]
        if not parts:
            out.append(None)
            continue
        out.append(sum(ledger.between(lo, hi).down_us / 60 / US for lo, hi in parts if hi > lo))
    return out


# --- words -----------------------------------------------------------------------------------------------

def summarize(cr: ClientReview, at: int) -> tuple[str, list[str]]:
    """(headline sentence, detail notes) written from the figures."""
    name = month_name(cr.month)
    prev_month = shift_month(cr.month, -1)
    prev_name = MONTH_NAMES[parse_month(prev_month)[1] - 1]
    met, total = cr.met_count
    parts = [f"{met} of {total} SLAs met in {name}" + ("" if cr.complete else " so far")]
    notes: list[str] = []
    if not cr.complete:
        notes.append(f"Month to date: figures as of {local_time(at, cr.timezone)} ({cr.timezone}); "
                     "they will change until the month ends.")
    if cr.data_from_us is not None:
        notes.append(f"Partial month: the figures start on {local_time(cr.data_from_us, cr.timezone)} "
                     f"({cr.timezone}); tickets, calls and other items settled before then are not counted.")
    for s in cr.slas:
        if not s.has_data or s.met:
            continue
        credit = f"credit {money(s.credits, s.currency)}" if s.credits else ""
        worst = s.worst
        if len(s.records) == 1:
            phrase = f"{s.display} missed at {fmt_value(worst.value, s.unit, s.target)} vs {plain_target(s)}"
            if s.period in ("week", "day"):
                phrase += f" in {short_period(worst.period)}"
            parts.append(phrase + (f" ({credit})" if credit else ""))
        else:
            unit_name = _period_noun(s.period)
            phrase = (f"{s.display} missed in {len(s.missed_records)} of {len(s.records)} {unit_name}s "
                      f"(worst {short_period(worst.period)} at {fmt_value(worst.value, s.unit, s.target)} "
                      f"vs {plain_target(s)}"
                      + (f"; {credit})" if credit else ")"))
            parts.append(phrase)
        notes.append(_missed_note(s, prev_month, prev_name))
    for s in cr.slas:
        before = s.previous(prev_month)
        if s.has_data and s.met and before is not None and not before[0]:
            parts.append(f"{s.display} recovered from {prev_name}")
            notes.append(f"{s.display} recovered: {fmt_value(before[1], s.unit, s.target)} in {prev_name}, "
                         f"{fmt_value(s.value, s.unit, s.target)} in {name} vs {fmt_target(s)}.")
    for s in cr.slas:
        left = s.budget_left
        if s.has_data and s.met and left is not None and left < LOW_MARGIN:
            notes.append(f"{s.display} met with little margin: {fmt_value(s.value, s.unit, s.target)} vs "
                         f"{fmt_target(s)}, {_margin_words(s, left)}.")
    missing = [s.display for s in cr.slas if not s.has_data]
    if missing:
        notes.append(f"No data in {name} for: {', '.join(missing)}.")
    credits = cr.credits
    if credits:
        owed = " and ".join(money(v, c) for c, v in sorted(credits.items()))
        notes.append(f"Service credits owed{' so far' if not cr.complete else ''} for {name}: {owed}.")
    else:
        notes.append(f"No service credits owed for {name}{' so far' if not cr.complete else ''}.")
    return "; ".join(parts) + ".", notes


def _margin_words(s: SlaReview, left: float) -> str:
    """How much room was left, in words a client reads: the share of the allowed misses not used, or how far
    under a time target the value stayed."""
    if not s.contract.judges_items:  # a mean time: 1 - value / target
        return f"{max(left, 0) * 100:.0f} % under the target"
    return f"{max(left, 0) * 100:.0f} % of the allowed misses unused"


def short_period(label: str) -> str:
    """W47 for 2026-W47; other labels unchanged."""
    return label.split("-", 1)[1] if "-W" in label else label


def _period_noun(period: str) -> str:
    return {"week": "week", "day": "day", "month": "month"}.get(period, "period")


def _missed_note(s: SlaReview, prev_month: str, prev_name: str) -> str:
    worst = s.worst
    what = s.contract.met_phrase
    if len(s.records) == 1:
        text = f"{s.display} missed: {fmt_value(worst.value, s.unit, s.target)}{' ' + what if what else ''}" \
               f" vs {fmt_target(s)}"
        if s.contract.has_item_clocks:
            text += f"; {len(s.breached_ids)} of {int(worst.decided):,} tickets breached"
    else:
        weeks = ", ".join(f"{short_period(r.period)} at {fmt_value(r.value, s.unit, s.target)}"
                          for r in s.missed_records)
        text = f"{s.display} missed in {len(s.missed_records)} of {len(s.records)} " \
               f"{_period_noun(s.period)}s ({weeks}) vs {fmt_target(s)}"
        if s.contract.has_item_clocks:
            text += f"; {len(s.breached_ids):,} of {int(s.decided):,} tickets breached"
    before = s.previous(prev_month)
    if before is not None:
        text += f"; {prev_name}: {fmt_value(before[1], s.unit, s.target)} ({'met' if before[0] else 'missed'})"
    if s.credits:
        text += f"; credit {money(s.credits, s.currency)}"
        if len(s.records) == 1:
            text += f" ({s.credit_percent:g} % of the {money(s.penalty_fee, s.currency)} monthly fee)"
    return text + "."


def local_time(at_us: int, tz: str) -> str:
    t = _dt.datetime.fromtimestamp(at_us / US, ZoneInfo(tz))
    return f"{t.day} {MONTH_NAMES[t.month - 1][:3]} {t.year} {t:%H:%M}"


def local_date(at_us: int, tz: str) -> str:
    t = _dt.datetime.fromtimestamp(at_us / US, ZoneInfo(tz))
    return f"{t.day} {MONTH_NAMES[t.month - 1][:3]} {t.year}"


def money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    text = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{currency} {text}" if currency else text


def _pct_digits(*ratios: float) -> int:
    digits = 1
    for r in ratios:
        text = f"{r * 100:.4f}".rstrip("0").rstrip(".")
        if "." in text:
            digits = max(digits, len(text.split(".")[1]))
    return min(digits, 3)


def fmt_value(value: float | None, unit: str | None, target: float | None = None) -> str:
    """A measured value for people: 86.4 % (more digits when the target needs them or the value would
    otherwise read like the target), 28.4 s, 5.0 min, 4.35."""
    if value is None:
        return "no data"
    if unit == "ratio":
        digits = _pct_digits(target) if target is not None else 1
        while target is not None and digits < 3 and value != target and \
                f"{value * 100:.{digits}f}" == f"{target * 100:.{digits}f}":
            digits += 1
        return f"{value * 100:.{digits}f} %"
    if unit == "seconds":
        return _duration(value)
    if unit == "score":
        return f"{value:.2f}"
    return f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if float(minutes).is_integer() else f"{minutes:.1f} min"


def fmt_target(s: SlaReview) -> str:
    """The target as the contract states it: ≥ 90 %, ≤ 30 s, ≤ 5 %, ≥ 4.2."""
    sign = "≤" if s.lower_is_better else "≥"
    if s.unit == "ratio":
        digits = _pct_digits(s.target)
        text = f"{s.target * 100:.{digits}f}".rstrip("0").rstrip(".")
        return f"{sign} {text} %"
    if s.unit == "seconds":
        return f"{sign} {_duration(s.target)}" if s.target >= 120 else f"{sign} {s.target:g} s"
    return f"{sign} {s.target:g}"


def plain_target(s: SlaReview) -> str:
    """The target without the comparison sign (for headlines: "86.4 % vs 90 %")."""
    return fmt_target(s)[2:]


# --- CSV -------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "section", "client", "sla", "kind", "review_month", "period", "period_start", "period_end", "complete",
    "decided", "good", "bad", "compliance", "value", "unit", "target", "met", "error_budget_remaining",
    "currency", "credit_percent", "credit", "projected_credit", "breaches", "summary", "group",
    "age_band", "open", "past_deadline", "median", "p90",
)
BREACH_REASONS = (  # the CSV's `group` of each breach reason, with the BreachReasons fields it reads
    ("open_at_deadline", "open_at_deadline", None, None),
    ("priority_change", "priority_change", "over_median", "over_p90"),
    ("paused", "paused", "paused_median", "paused_p90"),
    ("unknown", "unknown", None, None),
)


def csv_rows(review: Review) -> list[dict]:
    """The figures as flat rows: `section` = `period` for the month's contract periods (the replay records,
    with every breached ticket id), `trend` for the earlier periods of the trend, `priority`, `queue` and `channel`
    for the month's figures of one priority, queue or channel (named in `group`), `summary` per client.
    `breach_reason`: per ticket SLA with breaches, one row per reason (`group`: open_at_deadline, priority_change,
    paused, unknown) with its count in `bad` and, for priority_change (SLA time past the new target) and paused
    (paused SLA time), `median` and `p90` in seconds. `backlog`: per ticket SLA, priority (`group`) and age band
    (`age_band`) the tickets still `open` at the review instant and how many are `past_deadline`; from the SLA
    record a single row per client whose `summary` says why there is none."""
    rows = []
    for cr in review.clients:
        rows.append({"section": "summary", "client": cr.client, "review_month": cr.month,
                     "complete": cr.complete, "met": cr.met_count[0] == cr.met_count[1],
                     "summary": " ".join([cr.headline, *cr.notes])})
        if cr.backlog_unavailable:
            rows.append({"section": "backlog", "client": cr.client, "review_month": cr.month,
                         "summary": cr.backlog_unavailable})
        for s in cr.slas:
            for r in s.records:
                p = r.penalty or {}
                rows.append({
                    "section": "period", "client": cr.client, "sla": s.sla, "kind": s.kind,
                    "review_month": cr.month, "period": r.period, "period_start": r.period_start,
                    "period_end": r.period_end, "complete": r.complete, "decided": r.decided, "good": r.good,
                    "bad": r.bad, "compliance": r.compliance, "value": r.value, "unit": r.unit,
                    "target": r.target, "met": r.met, "error_budget_remaining": r.error_budget_remaining,
                    "currency": p.get("currency"), "credit_percent": p.get("credit_percent"),
                    "credit": p.get("credit"), "projected_credit": p.get("projected_credit"),
                    "breaches": ";".join(r.breaches) if r.breaches else None,
                })
            groups = [("priority", p, d, g, b, g / d if d else None, None) for p, d, g, b in s.priorities]
            groups += [(g.dimension, g.name, g.decided, g.good, g.bad, g.value, g.met) for g in s.groups]
            for section, name, decided, good, bad, value, met in groups:
                rows.append({
                    "section": section, "client": cr.client, "sla": s.sla, "kind": s.kind, "review_month": cr.month,
                    "group": name, "decided": decided, "good": good, "bad": bad, "unit": s.unit, "target": s.target,
                    "value": value, "met": met,
                    "compliance": good / decided if good is not None and decided and s.contract.judges_items else None,
                })
            if s.breach_reasons is not None:
                br = s.breach_reasons
                for name, count, median, p90 in BREACH_REASONS:
                    if name == "unknown" and not br.unknown:
                        continue
                    rows.append({
                        "section": "breach_reason", "client": cr.client, "sla": s.sla, "kind": s.kind,
                        "review_month": cr.month, "group": name, "decided": br.breached, "bad": getattr(br, count),
                        "unit": "seconds" if median else None,
                        "median": getattr(br, median) if median else None, "p90": getattr(br, p90) if p90 else None,
                    })
            for b in s.backlog or ():
                for (_, band), n, past in zip(AGE_BANDS, b.bands, b.past, strict=True):
                    rows.append({
                        "section": "backlog", "client": cr.client, "sla": s.sla, "kind": s.kind,
                        "review_month": cr.month, "group": b.priority, "age_band": band, "open": n,
                        "past_deadline": past,
                    })
            current = {r.period for r in s.records}
            for t in s.trend:
                if t.label in current or t.month == cr.month:
                    continue
                rows.append({
                    "section": "trend", "client": cr.client, "sla": s.sla, "kind": s.kind,
                    "review_month": cr.month, "period": t.label, "period_start": format_us(t.start_us),
                    "period_end": format_us(t.end_us), "decided": t.decided, "value": t.value, "unit": s.unit,
                    "target": s.target, "met": t.met,
                })
    return rows
