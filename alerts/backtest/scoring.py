"""Scoring of the backtest: each alert class against the outcome it predicts. Pure functions over data, no I/O.

The full rules, with their reasons, are in alerts/README.md "How backtests score". In short:

* **Item warnings** (`SlamonBreachImminent`, `SlamonItemsInLastStage`) speak of open items, so they are scored
  against *item* outcomes (`ItemOutcome`: every decided ticket of the history, breached or met). An episode
  *warns* an item when it fired while the item was open, before its deadline, and inside the alert's own
  selection (due within `within`; past the last stage). Recall: breached items warned at least L before their
  deadline (L = max(`item_min_lead_s`, `item_min_lead_share` x the item's allowed time)). Precision: warned
  items that then breached, over warned items. A warned item that was met may have been saved by the warning
  or never at risk: history cannot tell them apart, so they are reported as "met after a warning", not as
  false alarms or saves.
* **SLA-risk alerts** (burn rate, projected breach, calls, uptime, penalty exposure) are scored against
  *lost periods* (`Period.missed`: the period, or the history's part of it, ends below its objective; lost
  when its bad volume exceeded the whole period's error budget, `BreachTracker`) and against *budget-burn
  episodes* (spans in which at least `burn_share` of the period's error budget went within `burn_window_s`).
  An episode is a true positive when it announces a lost period (started at most `horizon_s` before the loss,
  still firing or stopped at most `grace_s` before it; or started inside the breach the period never
  recovered from, before the loss; lead time = loss - start); else *late* when it starts while the SLA is
  already in breach; else a true positive when it overlaps a burn episode (within `grace_s`); else a false
  alarm. A period that dips below its objective and recovers is not a lost period.
* **"Already missed" alerts** (`SlamonErrorBudgetExhausted`, `SlamonPenaltyCreditAccrued`) say the loss has
  happened: they never earn lead time and never count as detecting a loss. They are *confirmations* when the
  SLA is in breach, false alarms otherwise.
* Pipeline, worker and data-missing alerts are counted (notifications) but not scored.
* **Warm-up.** Scoring of an SLA begins at the first period boundary in the history, or `warm_up_s` after the
  history's start, whichever comes first: a period seen from its middle starts with tiny denominators.
  Episodes that start earlier, and outcomes (losses, burn episodes, item deadlines) before it, are left out.
* **Load.** Notifications per client per ISO week, pages and tickets apart (`Scored.load`).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

SLA_CATEGORIES = ("burn_rate", "breach", "calls", "uptime", "penalty")  # alert categories scored against SLAs
ITEM_WARNINGS = ("SlamonBreachImminent", "SlamonItemsAtRisk", "SlamonItemsInLastStage")
ALREADY_MISSED = ("SlamonErrorBudgetExhausted", "SlamonPenaltyCreditAccrued")
LEAD_BUCKETS = (("<5m", 0, 300), ("5-15m", 300, 900), ("15m-1h", 900, 3600), ("1-6h", 3600, 6 * 3600),
                ("6-24h", 6 * 3600, 24 * 3600), (">=24h", 24 * 3600, math.inf))
WEEK = 7 * 86400


@dataclass(frozen=True)
class Settings:
    step_s: int = 60  # scrape step and rule evaluation interval (event time)
    horizon_s: int = 24 * 3600  # an alert predicts a loss at most this long after it started ...
    grace_s: int = 3600  # ... and while it fires or at most this long after it stopped
    min_volume: float = 20  # decisions in the period before a missed period counts as a breach
    uptime_min_volume_s: float = 3600  # probe-covered seconds, for uptime SLAs
    merge_gap_s: int = 3600  # a breach that recovers for less than this and fails again is the same breach
    warm_up_s: int = 24 * 3600  # scoring begins at the first period boundary or this long after the start
    boundary_slack_s: int = 3600  # a period that began at most this long before the first scrape counts as whole
    burn_window_s: int = 3600  # a budget-burn episode: at least burn_share of the budget spent within this
    burn_share: float = 0.02
    item_min_lead_s: float = 0.0  # an item warning counts when it came at least this long before the deadline
    item_min_lead_share: float = 0.25  # ... and with at least this share of the item's allowed time left


@dataclass
class Breach:
    client: str
    sla: str
    at_s: float  # the scrape instant the SLA was first seen in breach
    end_s: float  # the last scrape instant in breach
    value: float | None = None  # the period-to-date value at the breach (compliance, seconds, score)


@dataclass
class Period:
    """One period of an SLA as the history saw it (the first and last may be partial)."""

    client: str
    sla: str
    start_s: float  # the period's start (slamon_sla_period_start), or the first scrape
    first_s: float  # first scrape in it
    last_s: float  # last scrape in it
    missed: bool = False  # in breach at its last scrape: it ends (or the history ends) below the objective
    lost_s: float | None = None  # missed: when it could no longer end on objective (`BreachTracker`)
    breach_s: float | None = None  # missed: when the period-to-date value fell below for the last time
    spent: list[tuple[float, float]] = field(default_factory=list, repr=False)  # (t, running max of bad/allowed)


@dataclass
class BurnEpisode:
    client: str
    sla: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ItemOutcome:
    """A decided item (ticket) of an SLA with a deadline."""

    client: str
    sla: str
    item: str
    priority: str | None
    created_s: float
    deadline_s: float
    closed_s: float  # decided: answered / resolved, or the deadline for a breach
    breached: bool

    @property
    def allowed_s(self) -> float:
        return max(0.0, self.deadline_s - self.created_s)


@dataclass(frozen=True)
class ItemSelection:
    """Which open items an item warning speaks of: due within `within_s`, or past `stage` of their time."""

    within_s: float | None = None
    stage: float | None = None
    priorities: tuple[str, ...] | None = None  # None: any; the page/ticket split of SlamonBreachImminent
    exclude: tuple[str, ...] = ()  # priorities it does not speak of (the ticket rule: not the paging ones)

    def window(self, item: ItemOutcome) -> tuple[float, float]:
        """[from, to) in which the alert counts the item: open, before its deadline, and selected."""
        end = min(item.closed_s, item.deadline_s)
        if self.within_s is not None:
            return max(item.created_s, item.deadline_s - self.within_s), end
        if self.stage is not None:
            return item.created_s + self.stage * item.allowed_s, end
        return item.created_s, end


@dataclass
class Episode:
    """One firing span of an alert (per alertname, severity, client, sla; series merged)."""

    alert: str
    severity: str  # the level: page | ticket | info
    category: str
    client: str
    sla: str
    pending_s: float  # first evaluation with a result
    start_s: float  # firing from
    end_s: float  # last evaluation firing
    outcome: str = ""  # see OUTCOMES
    lead_s: float | None = None  # to the loss it predicted (SLA-risk alerts) or the earliest deadline warned
    priority: str | None = None  # item warnings: the priority label of the series, when one
    warned: list[int] = field(default_factory=list)  # item warnings: indexes of the items it warned


OUTCOMES = ("true_positive", "late", "false_alarm", "confirmed", "met_after_warning", "no_item", "warm_up",
            "not_scored")


def alert_class(e: Episode) -> str:
    """item | sla | missed | platform."""
    if e.category not in SLA_CATEGORIES or e.client == "all" or e.sla == "all":
        return "platform"
    if e.alert in ITEM_WARNINGS:
        return "item"
    if e.alert in ALREADY_MISSED:
        return "missed"
    return "sla"


@dataclass
class Scored:
    name: str  # the alerting config's name
    rules: int  # alerting rules evaluated
    episodes: list[Episode]
    breaches: list[Breach]
    detected: dict[int, tuple[float, str]]  # lost-period index -> (lead seconds, first alert)
    periods: list[Period] = field(default_factory=list)
    burns: list[BurnEpisode] = field(default_factory=list)
    items: list[ItemOutcome] | None = None  # None: no item outcomes in the history (item warnings unscored)
    scored_from: dict[tuple[str, str], float] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    paged: dict[int, float] = field(default_factory=dict)  # lost-period index -> lead of the first page
    burns_detected: set[int] = field(default_factory=set)
    item_warned: dict[int, float] = field(default_factory=dict)  # item index -> time left when first warned

    @property
    def lost(self) -> list[Period]:
        return [p for p in self.periods if p.missed and p.lost_s is not None
                and p.lost_s >= self.scored_from.get((p.client, p.sla), -math.inf)]

    @property
    def leads(self) -> list[float]:
        return sorted(lead for lead, _ in self.detected.values())

    def summary(self) -> dict:
        sla_eps = [e for e in self.episodes if alert_class(e) == "sla" and e.outcome != "warm_up"]
        tp = sum(e.outcome == "true_positive" for e in sla_eps)
        fa = sum(e.outcome == "false_alarm" for e in sla_eps)
        late = sum(e.outcome == "late" for e in sla_eps)
        lost = self.lost
        burns = self.scored_burns
        return {
            "config": self.name, "alert_rules": self.rules,
            "breaches": len(lost), "detected": len(self.detected), "missed": len(lost) - len(self.detected),
            "recall": _ratio(len(self.detected), len(lost)),
            "paged_before_loss": len(self.paged), "page_recall": _ratio(len(self.paged), len(lost)),
            "burn_episodes": len(burns), "burn_episodes_alerted": len(self.burns_detected),
            "burn_recall": _ratio(len(self.burns_detected), len(burns)),
            "alert_episodes": len(sla_eps), "true_positives": tp, "late": late, "false_alarms": fa,
            "precision": _ratio(tp, tp + fa),
            "lead_time_seconds": lead_stats(self.leads),
            "page_lead_time_seconds": lead_stats(sorted(self.paged.values())),
            "already_missed": {k: sum(e.outcome == k for e in self.episodes if alert_class(e) == "missed")
                               for k in ("confirmed", "false_alarm")},
            "items": self.item_summary(),
            "warm_up_episodes": sum(e.outcome == "warm_up" for e in self.episodes),
            "not_scored_episodes": sum(e.outcome == "not_scored" for e in self.episodes),
        }

    @property
    def scored_burns(self) -> list[BurnEpisode]:
        return [b for b in self.burns if b.end_s >= self.scored_from.get((b.client, b.sla), -math.inf)]

    def scored_items(self) -> list[int]:
        if self.items is None:
            return []
        return [i for i, it in enumerate(self.items)
                if it.deadline_s >= self.scored_from.get((it.client, it.sla), -math.inf)]

    def item_summary(self) -> dict | None:
        """Item warnings against item outcomes (None: the history has no item outcomes)."""
        if self.items is None:
            return None
        idx = self.scored_items()
        breached = [i for i in idx if self.items[i].breached]
        warned = [i for i in idx if i in self.item_warned]
        in_time = [i for i in breached if i in self.item_warned and self.item_warned[i] >= self._min_lead(i)]
        warned_breached = [i for i in warned if self.items[i].breached]
        return {
            "items": len(idx), "breached": len(breached), "warned": len(warned),
            "breached_warned": sum(i in self.item_warned for i in breached),
            "breached_warned_in_time": len(in_time), "recall_in_time": _ratio(len(in_time), len(breached)),
            "warned_then_breached": len(warned_breached), "met_after_warning": len(warned) - len(warned_breached),
            "precision": _ratio(len(warned_breached), len(warned)),
            "min_lead": {"seconds": self.settings.item_min_lead_s, "share": self.settings.item_min_lead_share},
        }

    def _min_lead(self, i: int) -> float:
        it = self.items[i]
        return max(self.settings.item_min_lead_s, self.settings.item_min_lead_share * it.allowed_s)

    def per_alert(self) -> list[dict]:
        rows: dict[tuple[str, str], dict] = {}
        for e in self.episodes:
            row = rows.setdefault((e.alert, e.severity), {
                "alert": e.alert, "severity": e.severity, "category": e.category, "class": alert_class(e),
                "fired": 0, **{k: 0 for k in OUTCOMES}, "leads": [], "items_warned": set()})
            row["fired"] += 1
            row[e.outcome or "not_scored"] += 1
            if e.lead_s is not None and alert_class(e) == "sla":
                row["leads"].append(e.lead_s)
            row["items_warned"].update(e.warned)
        out = []
        for row in sorted(rows.values(), key=lambda r: (r["alert"], r["severity"])):
            row["true_positives"] = row.pop("true_positive")
            row["false_alarms"] = row.pop("false_alarm")
            leads = row.pop("leads")
            row["lead_time_seconds"] = lead_stats(leads)
            warned = row.pop("items_warned")
            if row["class"] == "item" and self.items is not None:
                hit = sum(self.items[i].breached for i in warned)
                row["item_precision"] = {"warned": len(warned), "then_breached": hit,
                                         "precision": _ratio(hit, len(warned))}
            out.append(row)
        return out

    def per_sla(self) -> list[dict]:
        lost = self.lost
        keys = sorted({(p.client, p.sla) for p in lost} |
                      {(e.client, e.sla) for e in self.episodes if alert_class(e) in ("sla", "missed")})
        out = []
        index = {id(p): i for i, p in enumerate(lost)}
        for client, sla in keys:
            mine = [p for p in lost if (p.client, p.sla) == (client, sla)]
            idx = [index[id(p)] for p in mine]
            eps = [e for e in self.episodes if (e.client, e.sla) == (client, sla)]
            leads = sorted(self.detected[i][0] for i in idx if i in self.detected)
            out.append({
                "client": client, "sla": sla, "breaches": len(idx),
                "detected": sum(i in self.detected for i in idx), "missed": sum(i not in self.detected for i in idx),
                "breach_times": [iso(p.lost_s) for p in mine],
                "first_alerts": [self.detected[i][1] if i in self.detected else None for i in idx],
                "alerts_fired": len(eps), "false_alarms": sum(e.outcome == "false_alarm" for e in eps),
                "late": sum(e.outcome == "late" for e in eps), "lead_time_seconds": lead_stats(leads),
            })
        return out

    def load(self) -> list[dict]:
        """Notifications (episodes) per client per ISO week, pages and tickets apart."""
        rows: dict[tuple[str, str], dict] = {}
        for e in self.episodes:
            week = datetime.fromtimestamp(e.start_s, UTC).strftime("%G-W%V")
            row = rows.setdefault((e.client, week), {"client": e.client, "week": week, "page": 0, "ticket": 0,
                                                     "info": 0})
            row[e.severity if e.severity in ("page", "ticket", "info") else "ticket"] += 1
        return [rows[k] for k in sorted(rows)]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def lead_stats(leads: list[float]) -> dict | None:
    if not leads:
        return None
    leads = sorted(leads)
    return {"n": len(leads), "min": leads[0], "p50": statistics.median(leads), "max": leads[-1],
            "mean": statistics.fmean(leads),
            "buckets": {label: sum(lo <= x < hi for x in leads) for label, lo, hi in LEAD_BUCKETS}}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# --- the scoring start -------------------------------------------------------------------------------------

def scoring_start(history_start_s: float, boundaries: dict[tuple[str, str], list[float]],
                  keys: Iterable[tuple[str, str]], warm_up_s: float,
                  slack_s: float = 0) -> dict[tuple[str, str], float]:
    """Per SLA: the first period boundary at or after the history's start (`slack_s` before it counts: the
    first scrape comes a step after the first event), or `warm_up_s` after the start, whichever is first.
    `boundaries`: the period starts the history saw per SLA (none for rolling periods)."""
    out = {}
    for key in keys:
        after = [b for b in boundaries.get(key, ()) if b >= history_start_s - slack_s]
        out[key] = min([history_start_s + warm_up_s, *after])
    return out


# --- classification -----------------------------------------------------------------------------------------

def predicts(e: Episode, at_s: float, horizon_s: float, grace_s: float) -> bool:
    """The episode announced an outcome at `at_s`: it started before it (at most `horizon_s` before) and was
    still firing, or stopped at most `grace_s` before it (an alert that cleared long before did not)."""
    return e.start_s <= at_s <= e.end_s + grace_s and at_s - e.start_s <= horizon_s


def announces(e: Episode, p: Period, horizon_s: float, grace_s: float) -> bool:
    """The episode announced the loss of period `p`: it predicts the loss instant, or it started inside the
    breach the period never recovered from, before the loss (the value was already below and stayed below:
    what it said came true, however long before)."""
    return predicts(e, p.lost_s, horizon_s, grace_s) or (
        p.breach_s is not None and p.breach_s <= e.start_s <= p.lost_s)


def _overlaps(e: Episode, b: BurnEpisode, grace_s: float) -> bool:
    return e.start_s <= b.end_s and b.start_s <= e.end_s + grace_s


def score(name: str, rules: int, episodes: list[Episode], breaches: list[Breach], horizon_s: float = 86_400,
          grace_s: float = 3_600, *, periods: list[Period] | None = None, burns: list[BurnEpisode] | None = None,
          items: list[ItemOutcome] | None = None, selections: dict[tuple, ItemSelection] | None = None,
          scored_from: dict[tuple[str, str], float] | None = None,
          settings: Settings | None = None) -> Scored:
    """Classify every episode by its class (module docstring). `periods` default: one period per breach, lost
    at it (a history without period data); `selections`: (alert, client, sla, severity) -> ItemSelection."""
    settings = settings if settings is not None else Settings(horizon_s=int(horizon_s), grace_s=int(grace_s))
    if periods is None:
        periods = [Period(b.client, b.sla, b.at_s, b.at_s, b.end_s, True, b.at_s) for b in breaches]
    burns = burns or []
    scored_from = scored_from or {}
    begin = lambda key: scored_from.get(key, -math.inf)  # noqa: E731
    result = Scored(name, rules, episodes, breaches, {}, periods, burns, items, scored_from, settings)
    lost = result.lost
    lost_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, p in enumerate(lost):
        lost_by[(p.client, p.sla)].append(i)
    breach_by: dict[tuple[str, str], list[Breach]] = defaultdict(list)
    for b in breaches:
        breach_by[(b.client, b.sla)].append(b)
    burn_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, b in enumerate(burns):
        if b.end_s >= begin((b.client, b.sla)):
            burn_by[(b.client, b.sla)].append(i)
    items_by: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, it in enumerate(items or []):
        if it.deadline_s >= begin((it.client, it.sla)):
            items_by[(it.client, it.sla)].append(i)

    for e in episodes:
        key = (e.client, e.sla)
        cls = alert_class(e)
        e.lead_s, e.warned = None, []
        if cls == "platform":
            e.outcome = "not_scored"
            continue
        if e.start_s < begin(key) and cls != "item":  # item warnings: their items are filtered by deadline
            e.outcome = "warm_up"
            continue
        in_breach = any(b.at_s <= e.start_s <= b.end_s for b in breach_by.get(key, []))
        if cls == "missed":  # "already missed": confirms a breach, never predicts one
            e.outcome = "confirmed" if in_breach or any(
                lost[i].lost_s <= e.start_s for i in lost_by.get(key, [])) else "false_alarm"
            continue
        if cls == "item":
            if items is None:
                e.outcome = "not_scored"
                continue
            sel = (selections or {}).get((e.alert, e.client, e.sla, e.severity), ItemSelection())
            for i in items_by.get(key, []):
                it = items[i]
                if (sel.priorities is not None and it.priority not in sel.priorities) or it.priority in sel.exclude:
                    continue
                if e.priority is not None and it.priority != e.priority:
                    continue
                lo, hi = sel.window(it)
                if lo < hi and e.start_s < hi and lo <= e.end_s:
                    e.warned.append(i)
                    left = it.deadline_s - max(e.start_s, lo)
                    result.item_warned[i] = max(result.item_warned.get(i, -math.inf), left)
            hits = [i for i in e.warned if items[i].breached]
            e.outcome = "true_positive" if hits else ("met_after_warning" if e.warned else (
                "warm_up" if e.start_s < begin(key) else "no_item"))
            if hits:
                e.lead_s = max(items[i].deadline_s - max(e.start_s, sel.window(items[i])[0]) for i in hits)
            continue
        following = [i for i in lost_by.get(key, []) if announces(e, lost[i], horizon_s, grace_s)]
        burning = [i for i in burn_by.get(key, []) if _overlaps(e, burns[i], grace_s)]
        result.burns_detected.update(burning)
        if following:
            e.outcome, e.lead_s = "true_positive", lost[following[0]].lost_s - e.start_s
        elif in_breach:  # the period-to-date value already missed when it started
            e.outcome = "late"
        elif burning:
            e.outcome = "true_positive"
        else:
            e.outcome = "false_alarm"
    for i, p in enumerate(lost):
        before = [e for e in episodes if alert_class(e) == "sla" and e.outcome == "true_positive"
                  and (e.client, e.sla) == (p.client, p.sla) and announces(e, p, horizon_s, grace_s)]
        if before:
            first = min(before, key=lambda e: (e.start_s, e.alert))
            result.detected[i] = (p.lost_s - first.start_s, f"{first.alert}/{first.severity}")
        pages = [e for e in before if e.severity == "page"]
        if pages:
            result.paged[i] = p.lost_s - min(e.start_s for e in pages)
    return result


# --- outcomes from the history (pure) ---------------------------------------------------------------------

def burn_episodes(client: str, sla: str, samples: list[tuple[float, float]], window_s: float,
                  share: float) -> list[BurnEpisode]:
    """Spans in which at least `share` of the period's error budget was spent within `window_s`: from
    (t, budget remaining as a share of the budget) samples in time order. A new period (the remaining budget
    jumps up) starts over."""
    out: list[BurnEpisode] = []
    j = 0
    current: BurnEpisode | None = None
    for k, (t, r) in enumerate(samples):
        if k and r > samples[k - 1][1] + 0.5:  # the budget was reset: a new period
            j = k
        while samples[j][0] < t - window_s:
            j += 1
        spent = max(r0 for _, r0 in samples[j:k + 1]) - r
        if spent >= share:
            if current is not None and t - current.end_s <= window_s:
                current.end_s = t
            else:
                current = BurnEpisode(client, sla, t, t)
                out.append(current)
    return out


# --- alert episodes -----------------------------------------------------------------------------------------

def episodes_from_series(alert: str, severity: str, category: str, client: str, sla: str, for_s: float,
                         step_s: float, series: Iterable[list[float]], keep_firing_for_s: float = 0.0,
                         end_s: float | None = None) -> list[Episode]:
    """Firing episodes from the evaluation instants at which the alert's expression returned each series
    (`alert_spans`: Prometheus' pending -> firing -> resolved, with `for` and `keep_firing_for`). The series
    of one alert firing together are one notification."""
    spans: list[tuple[float, float, float]] = []
    for times in series:
        spans.extend(alert_spans(times, for_s, step_s, keep_firing_for_s, end_s))
    spans.sort()
    merged: list[list[float]] = []
    for pending, start, end in spans:  # series of one alert firing together are one notification
        if merged and start <= merged[-1][2] + step_s * 1.5:
            merged[-1][2] = max(merged[-1][2], end)
            merged[-1][0] = min(merged[-1][0], pending)
        else:
            merged.append([pending, start, end])
    return [Episode(alert, severity, category, client, sla, p, s, e) for p, s, e in merged]


def alert_spans(times: Iterable[float], for_s: float, step_s: float, keep_firing_for_s: float = 0.0,
                end_s: float | None = None) -> list[tuple[float, float, float]]:
    """The rule manager's state machine over the evaluation instants (every `step_s`) at which one series of
    an alert's expression was returned: (active at, firing from, last evaluation firing) per firing span.

    A series becomes pending at the first evaluation returning it (active at) and fires at the first one at
    least `for_s` later; a pending alert whose series goes missing is dropped. A firing alert resolves at the
    first evaluation without its series, unless `keep_firing_for_s`: then it keeps firing while less than that
    has passed since the first evaluation without it (and continues when the series returns meanwhile).
    `end_s`: the last evaluation of the history (caps the keep-firing tail; default: the last instant seen)."""
    keep_evals = math.ceil(keep_firing_for_s / step_s - 1e-9) if keep_firing_for_s > 0 else 0
    spans: list[tuple[float, float, float]] = []
    active = fired = last = None
    for t in sorted(times):
        if last is not None:
            missing = round((t - last) / step_s) - 1  # evaluations without the series in between
            if missing > 0 and (fired is None or missing > keep_evals):
                if fired is not None:
                    spans.append((active, fired, last + keep_evals * step_s))
                active = fired = None
        if active is None:
            active = t
        if fired is None and t - active >= for_s - 1e-9:
            fired = t
        last = t
    if fired is not None:
        end = last + keep_evals * step_s
        spans.append((active, fired, min(end, max(last, end_s)) if end_s is not None else last))
    return spans


def merge_episodes(episodes: list[Episode], step_s: float) -> list[Episode]:
    """Episodes of one alert, level and SLA from different rules (a burn-rate rule per tier) that fire
    together are one notification (Alertmanager groups by alertname, client and sla)."""
    by: dict[tuple, list[Episode]] = defaultdict(list)
    for e in episodes:
        by[(e.alert, e.severity, e.client, e.sla)].append(e)
    out: list[Episode] = []
    for group in by.values():
        group.sort(key=lambda e: e.start_s)
        merged: list[Episode] = []
        for e in group:
            if merged and e.start_s <= merged[-1].end_s + step_s * 1.5:
                merged[-1].end_s = max(merged[-1].end_s, e.end_s)
                merged[-1].pending_s = min(merged[-1].pending_s, e.pending_s)
            else:
                merged.append(e)
        out.extend(merged)
    out.sort(key=lambda e: (e.start_s, e.alert, e.client, e.sla))
    return out


# --- breaches -----------------------------------------------------------------------------------------------

class BreachTracker:
    """Breaches from the exported series at each scrape: met == 0 with enough volume in the period. Also keeps
    the periods (`periods`: each ends missed or met), the period boundaries seen (`boundaries`) and the
    remaining error budget per SLA (`budget`, for `burn_episodes`).

    A missed period is *lost* at the first scrape at which its bad volume exceeded the error budget of the
    whole period as the history saw it (bad > allowed x the volume at its last scrape): from then on no
    performance could bring it back. Early in a period the period-to-date value dips below the objective on a
    handful of items long before that (a 2-minute outage on the 1st misses a 99.9 % month-to-date); scoring
    such a dip as the loss would make every alert "late". The bad volume in budget units comes from the
    exported remaining budget b and volume V: bad / allowed = (1 - b) x V. SLAs without an error budget (a
    mean, a score) are lost when the breach they never recovered from began."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.breaches: list[Breach] = []
        self.periods: list[Period] = []
        self.boundaries: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.budget: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        self._open: dict[tuple[str, str], Breach] = {}  # in breach now
        self._last: dict[tuple[str, str], Breach] = {}  # the latest breach, for merging
        self._period: dict[tuple[str, str], float] = {}
        self._current: dict[tuple[str, str], Period] = {}

    def observe(self, t_s: float, figures: dict[tuple[str, str], dict]) -> None:
        gap = self.settings.merge_gap_s
        for key, f in figures.items():
            met, start = f.get("met"), f.get("period_start")
            if met is None:
                continue
            volume = f.get("decided", 0.0) if not f.get("uptime") else f.get("known", 0.0)
            gate = self.settings.uptime_min_volume_s if f.get("uptime") else self.settings.min_volume
            if f.get("budget") is not None and volume >= gate:  # a budget over a handful of items swings wildly
                self.budget[key].append((t_s, f["budget"]))
            new_period = start is not None and self._period.get(key) not in (None, start) and not f.get("rolling")
            if start is not None and not f.get("rolling") and self._period.get(key) != start:
                self.boundaries[key].append(start)
            if start is not None:
                self._period[key] = start
            if new_period:
                self._open.pop(key, None)
                self._last.pop(key, None)
            period = self._current.get(key)
            if period is None or new_period:
                period = Period(key[0], key[1], start if start is not None and not f.get("rolling") else t_s,
                                t_s, t_s)
                self.periods.append(period)
                self._current[key] = period
            period.last_s = t_s
            if f.get("budget") is not None:
                spent = (1.0 - f["budget"]) * volume
                if not period.spent or spent > period.spent[-1][1]:
                    period.spent.append((t_s, spent))
            failing = met == 0 and volume >= gate
            current = self._open.get(key)
            if failing:
                if current is None:
                    last = self._last.get(key)
                    if last is not None and t_s - last.end_s <= gap:
                        current = self._open[key] = last  # a short recovery: the same breach goes on
                    else:
                        current = Breach(key[0], key[1], t_s, t_s, f.get("value"))
                        self.breaches.append(current)
                        self._open[key] = self._last[key] = current
                current.end_s = t_s
                period.missed, period.lost_s = True, _lost_at(period, volume, current.at_s)
                period.breach_s = current.at_s
            else:
                if current is not None:
                    del self._open[key]
                period.missed, period.lost_s, period.breach_s = False, None, None


def _lost_at(period: Period, volume: float, breach_s: float) -> float:
    """The first scrape whose bad volume (budget units) exceeded `volume`, the period's volume so far."""
    i = bisect.bisect_right(period.spent, volume * (1 + 1e-9), key=lambda p: p[1])
    return period.spent[i][0] if i < len(period.spent) else breach_s
