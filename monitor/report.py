"""The replay report (spec section 4): one record per (client, sla, period). A public interface: the
schema is documented in README "Report schema"; add fields, never rename them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field

from monitor.compliance import (
    burn_rate,
    compliance,
    credit_percent,
    error_budget_remaining,
    projected_mean,
    projected_ratio,
)
from monitor.contracts import CallSla, Rolling, UptimeSla
from monitor.engine import DAY_US, Engine
from monitor.events import format_us
from monitor.ledger import SlaLedger, Tally
from monitor.periods import PeriodWindow, period_of, periods_between, rolling_window
from monitor.queries import OpenClocks, open_clocks, waiting_calls
from monitor.uptime import UptimeLedger

US = 1_000_000
SOON_US = 30 * 60 * US  # "breaching within N minutes" in the report
RECENT_US = DAY_US  # the recent window of the projection
BURN_WINDOWS = {"1h": 3600 * US, "6h": 6 * 3600 * US, "24h": DAY_US}
# Record figures a caller may ask `build_report` not to compute: each costs a walk per SLA at every scrape
# (burn windows, the sketch's buckets, a call SLA's waiting calls)
SKIPPABLE = frozenset({"burn_rate", "latency_seconds", "open"})


@dataclass
class Record:
    client: str
    sla: str
    kind: str
    period: str
    start_us: int  # integer instants inside; formatted (period_start, period_end) only at the output edge
    end_us: int
    complete: bool
    decided: float
    good: float | None
    bad: float | None
    compliance: float | None
    target: float
    met: bool
    error_budget_remaining: float | None
    value: float | None = None
    unit: str | None = None
    projected: float | None = None
    penalty: dict | None = None
    burn_rate: dict[str, float | None] = field(default_factory=dict)
    open: int | None = None
    at_risk: dict[str, int] | None = None
    breaching_soon: int | None = None
    next_deadline_seconds: float | None = None
    unknown_seconds: float | None = None
    latency_seconds: dict[str, float | None] | None = None
    breaches: list[str] | None = None

    @property
    def period_start(self) -> str:
        return format_us(self.start_us)

    @property
    def period_end(self) -> str:
        return format_us(self.end_us)

    def as_dict(self) -> dict:
        """The record in the report schema (README "Report schema"): instants as RFC 3339 text."""
        out = {}
        for key, value in asdict(self).items():
            if key == "start_us":
                out["period_start"] = format_us(value)
            elif key == "end_us":
                out["period_end"] = format_us(value)
            else:
                out[key] = value
        return out


def build_report(engine: Engine, at_us: int, *, current_only: bool = False,
                 live: dict[tuple[str, str], OpenClocks] | None = None,
                 clients: Iterable[str] | None = None, skip: Collection[str] = ()) -> list[Record]:
    """Every (client, sla, period) with decisions up to `at_us`, plus each SLA's current period; with
    `current_only`, just the current periods and no breached-item lists (a scrape: costs what is live, not
    the history). `live`: the engine's `open_clocks` at `at_us` with `SOON_US` among its spans, when the caller
    has them already.
    `clients`: only these (in contract order); default every client.
    `skip`: figures nobody reads, left at their defaults instead of computed (of `SKIPPABLE`: the backtest
    exports only the series its alert rules read)."""
    unknown = set(skip) - SKIPPABLE
    if unknown:
        raise ValueError(f"cannot skip {sorted(unknown)}: only {sorted(SKIPPABLE)}")
    engine.advance_to(at_us)
    if live is None:
        live = open_clocks(engine, at_us, (SOON_US,))
    records: list[Record] = []
    wanted = None if clients is None else set(clients)
    for name, client in engine.contracts.clients.items():
        if wanted is not None and name not in wanted:
            continue
        model = engine.clients[name]
        for sla in client.slas:
            if isinstance(sla, UptimeSla):
                ledger = next(lg for lg in model.uptime[sla.service] if lg.sla is sla)
                records.extend(_uptime_records(ledger, at_us, current_only, skip))
            else:
                records.extend(_ledger_records(engine, engine.ledgers[(name, sla.name)], sla, at_us, current_only,
                                               live, skip))
    return records


def _windows(ledger: SlaLedger, period, tz: str, at_us: int) -> list[PeriodWindow]:
    """The periods with decisions, and the current one. A period whose decisions were all withdrawn (a reopen,
    a late event) is not listed: whether it ever held one depends on the order events arrived in."""
    current = period_of(at_us, period, tz)
    found = {w.label: w for w in ledger.windows.values()
             if w.start_us <= at_us and not ledger.periods.get(w.label, Tally()).empty}
    found[current.label] = current
    return sorted(found.values(), key=lambda w: w.start_us)


def _ledger_records(engine: Engine, ledger: SlaLedger, sla, at_us: int, current_only: bool = False,
                    live: dict | None = None, skip: Collection[str] = ()) -> list[Record]:
    if isinstance(sla.period, Rolling):
        window = rolling_window(at_us, sla.period.rolling)
        if sla.value_is_mean:  # the window's summed seconds or scores
            tally = ledger.window(window.start_us, window.end_us)
        else:  # a share of items: the counts are all it needs (and cost two bisections, not a month of buckets)
            tally = Tally(*ledger.window_counts(window.start_us, window.end_us))
        return [_record(engine, ledger, sla, window, tally, at_us, True, live, not current_only, skip)]
    out = []
    windows = [period_of(at_us, sla.period, ledger.tz)] if current_only else \
        _windows(ledger, sla.period, ledger.tz, at_us)
    for window in windows:
        tally = ledger.periods.get(window.label, Tally())
        current = window.start_us <= at_us < window.end_us
        out.append(_record(engine, ledger, sla, window, tally, at_us, current, live, not current_only, skip))
    return out


def _record(engine, ledger: SlaLedger, sla, window: PeriodWindow, tally: Tally, at_us: int,
            current: bool, live: dict | None, list_breaches: bool = True, skip: Collection[str] = ()) -> Record:
    target = sla.goal
    value, comp = _value(sla, tally)
    lower_is_better = sla.lower_is_better
    met = True if value is None else (value <= target if lower_is_better else value >= target)
    rec = Record(
        client=ledger.client, sla=sla.name, kind=sla.kind, period=window.label,
        start_us=window.start_us, end_us=window.end_us,
        complete=window.end_us <= at_us + 1, decided=tally.decided,
        good=tally.good if sla.judges_items else None,
        bad=tally.bad if sla.judges_items else None,
        compliance=comp, target=target, met=met,
        error_budget_remaining=_budget(sla, tally, value),
        value=value, unit=sla.unit,
    )
    sketch = ledger.sketches.get(window.label if not isinstance(sla.period, Rolling) else "rolling")
    if sketch is not None and sketch.count > 0 and "latency_seconds" not in skip:
        qs = (0.5, 0.9, 0.99)
        rec.latency_seconds = {f"p{int(q * 100)}": v for q, v in zip(qs, sketch.quantiles(qs), strict=True)}
    if sla.has_item_clocks and list_breaches:  # a scrape (`current_only`) exports no listing: not sorted for it
        listed = ledger.breaches.get(window.label if not isinstance(sla.period, Rolling) else "rolling", [])
        rec.breaches = sorted(item for at, item in listed if window.start_us <= at < window.end_us)
    if current:
        _add_live(engine, ledger, sla, window, tally, at_us, rec, live, skip)
    projected = rec.projected if current else value
    rec.penalty = _penalty(sla, value, projected, lower_is_better)
    return rec


def _value(sla, tally: Tally) -> tuple[float | None, float | None]:
    """(measured value compared with the target, compliance ratio)."""
    ratio = compliance(tally.good, tally.decided) if sla.judges_items else None
    if sla.value_is_mean:
        return (tally.total / tally.decided if tally.decided else None), ratio
    if sla.value_is_bad_share:  # an abandon rate
        return (tally.bad / tally.decided if tally.decided else None), ratio
    return ratio, ratio


def _budget(sla, tally: Tally, value: float | None) -> float | None:
    if not sla.judges_items:  # a time budget: target x answered calls
        return 1.0 if value is None else 1 - value / sla.target
    if sla.good_share_goal is None:  # a mean score has no budget of items
        return None
    return error_budget_remaining(tally.bad, tally.decided, sla.good_share_goal)


def _add_live(engine: Engine, ledger: SlaLedger, sla, window: PeriodWindow, tally: Tally, at_us: int,
              rec: Record, live: dict | None, skip: Collection[str] = ()) -> None:
    ratio_target = sla.good_share_goal
    if ratio_target is not None and "burn_rate" not in skip:
        for label, length in BURN_WINDOWS.items():
            w = ledger.window_counts(at_us + 1 - length, at_us + 1)
            rec.burn_rate[label] = burn_rate(w.bad, w.decided, ratio_target)
    # a mean needs the recent window's summed seconds or scores; the other projections its counts only
    recent = ledger.window(at_us + 1 - RECENT_US, at_us + 1) if sla.value_is_mean else \
        ledger.window_counts(at_us + 1 - RECENT_US, at_us + 1)
    share = (at_us + 1 - window.start_us) / (window.end_us - window.start_us)
    if isinstance(sla.period, Rolling):
        rec.projected = rec.value
    elif sla.value_is_mean:
        rec.projected = projected_mean(tally.total, tally.decided, recent.total, recent.decided, share)
    elif sla.value_is_bad_share:  # an abandon rate: project the kept share
        kept = projected_ratio(tally.good, tally.decided, recent.good, recent.decided, share)
        rec.projected = None if kept is None else 1 - kept
    else:
        rec.projected = projected_ratio(tally.good, tally.decided, recent.good, recent.decided, share)
    if sla.has_item_clocks:
        if live is None:
            live = open_clocks(engine, at_us, (SOON_US,), clients=(ledger.client,))
        clocks = live.get((ledger.client, sla.name)) or OpenClocks()
        rec.open, rec.breaching_soon = clocks.count, clocks.due_within(SOON_US)
        rec.at_risk = {str(s): clocks.stages.get(s, 0) for s in sla.stages}
        nxt = clocks.next_deadline_us
        rec.next_deadline_seconds = None if nxt is None else (nxt - at_us) / US
    elif isinstance(sla, CallSla) and "open" not in skip:  # walks the client's waiting calls
        rec.open = sum(w.count for queue, w in waiting_calls(engine, ledger.client, at_us).items()
                       if not sla.queues or queue in sla.queues)


def _penalty(sla, value: float | None, projected: float | None, lower_is_better: bool) -> dict | None:
    if sla.penalty is None:
        return None
    fee = sla.penalty.monthly_fee
    now_pct = credit_percent(sla.penalty, value, lower_is_better)
    proj_pct = credit_percent(sla.penalty, projected, lower_is_better)
    return {
        "currency": sla.penalty.currency, "monthly_fee": fee,
        "credit_percent": now_pct, "credit": round(fee * now_pct / 100, 2),
        "projected_credit_percent": proj_pct, "projected_credit": round(fee * proj_pct / 100, 2),
    }


def _uptime_records(ledger: UptimeLedger, at_us: int, current_only: bool = False,
                    skip: Collection[str] = ()) -> list[Record]:
    sla = ledger.sla
    if isinstance(sla.period, Rolling):
        windows = [rolling_window(at_us, sla.period.rolling)]
    elif current_only:
        windows = [period_of(at_us, sla.period, ledger.tz)]
    else:
        first = ledger.first_probe_us
        if first is None:
            first = at_us
        windows = periods_between(min(first, at_us), at_us + 1, sla.period, ledger.tz)
    out = []
    for window in windows:
        end = min(window.end_us, at_us)  # time is integrated up to the report instant
        t = ledger.between(window.start_us, end)
        known = t.known_us
        value = t.up_us / known if known else None
        current = window.start_us <= at_us < window.end_us
        rec = Record(
            client=ledger.client, sla=sla.name, kind="uptime", period=window.label,
            start_us=window.start_us, end_us=window.end_us,
            complete=window.end_us <= at_us + 1, decided=known / US, good=t.up_us / US, bad=t.down_us / US,
            compliance=value, target=sla.target, met=True if value is None else value >= sla.target,
            error_budget_remaining=error_budget_remaining(t.down_us, known, sla.target),
            value=value, unit="ratio", unknown_seconds=t.unknown_us / US,
        )
        if current:
            if "burn_rate" not in skip:
                for label, length in BURN_WINDOWS.items():
                    w = ledger.between(at_us - length, at_us)
                    rec.burn_rate[label] = burn_rate(w.down_us, w.known_us, sla.target)
            recent = ledger.between(at_us - RECENT_US, at_us)
            share = (end - window.start_us) / (window.end_us - window.start_us)
            rec.projected = projected_ratio(t.up_us, known, recent.up_us, recent.known_us, share)
        rec.penalty = _penalty(sla, value, rec.projected if current else value, False)
        out.append(rec)
    return out
