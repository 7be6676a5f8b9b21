"""Scoring of the backtest: breaches from the exported figures, alert episodes from Prometheus' answers, and
the classification of both. Pure functions over data, no I/O.

A *breach* of an SLA is the moment its period is lost so far: `slamon_sla_met` drops to 0 (the period-to-date
value misses the target) with at least `min_volume` decisions in the period (uptime: `uptime_min_volume_s` of
probe-covered time). It counts once until the SLA meets its target again for at least `merge_gap_s` (a new
period starts over). An alert episode of an SLA-scoped alert (labels client and sla) *predicts* a breach of
the same SLA when it started before it (at most `horizon_s` before) and was still firing at the breach or
stopped at most `grace_s` before it. An episode is a *true positive* when it predicts a breach, *late* when
it starts while the SLA is already in breach, and a *false alarm* otherwise. A breach is *detected* when an
episode predicts it (lead time = breach - the earliest such start), otherwise *missed*.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

SLA_CATEGORIES = ("burn_rate", "breach", "calls", "uptime", "penalty")  # alert categories that are scored
LEAD_BUCKETS = (("<5m", 0, 300), ("5-15m", 300, 900), ("15m-1h", 900, 3600), ("1-6h", 3600, 6 * 3600),
                ("6-24h", 6 * 3600, 24 * 3600), (">=24h", 24 * 3600, math.inf))


@dataclass(frozen=True)
class Settings:
    step_s: int = 60  # scrape step and rule evaluation interval (event time)
    horizon_s: int = 24 * 3600  # an alert predicts a breach at most this long after it started ...
    grace_s: int = 3600  # ... and while it fires or at most this long after it stopped
    min_volume: float = 20  # decisions in the period before a missed period counts as a breach
    uptime_min_volume_s: float = 3600  # probe-covered seconds, for uptime SLAs
    merge_gap_s: int = 3600  # a breach that recovers for less than this and fails again is the same breach


@dataclass
class Breach:
    client: str
    sla: str
    at_s: float  # the scrape instant the SLA was first seen in breach
    end_s: float  # the last scrape instant in breach
    value: float | None = None  # the period-to-date value at the breach (compliance, seconds, score)


@dataclass
class Episode:
    """One firing span of an alert (per alertname, severity, client, sla; series merged)."""

    alert: str
    severity: str
    category: str
    client: str
    sla: str
    pending_s: float  # first evaluation with a result
    start_s: float  # firing from
    end_s: float  # last evaluation firing
    outcome: str = ""  # true_positive | late | false_alarm | not_scored
    lead_s: float | None = None  # to the breach it predicted


@dataclass
class Scored:
    name: str  # the alerting config's name
    rules: int  # alerting rules evaluated
    episodes: list[Episode]
    breaches: list[Breach]
    detected: dict[int, tuple[float, str]]  # breach index -> (lead seconds, first alert)

    @property
    def leads(self) -> list[float]:
        return sorted(lead for lead, _ in self.detected.values())

    def summary(self) -> dict:
        scored = [e for e in self.episodes if e.outcome != "not_scored"]
        tp = sum(e.outcome == "true_positive" for e in scored)
        fa = sum(e.outcome == "false_alarm" for e in scored)
        late = sum(e.outcome == "late" for e in scored)
        return {
            "config": self.name, "alert_rules": self.rules, "breaches": len(self.breaches),
            "detected": len(self.detected), "missed": len(self.breaches) - len(self.detected),
            "recall": _ratio(len(self.detected), len(self.breaches)),
            "alert_episodes": len(scored), "true_positives": tp, "late": late, "false_alarms": fa,
            "precision": _ratio(tp, tp + fa),
            "lead_time_seconds": lead_stats(self.leads),
            "not_scored_episodes": len(self.episodes) - len(scored),
        }

    def per_alert(self) -> list[dict]:
        rows: dict[tuple[str, str], dict] = {}
        for e in self.episodes:
            row = rows.setdefault((e.alert, e.severity), {
                "alert": e.alert, "severity": e.severity, "category": e.category, "fired": 0,
                "true_positives": 0, "late": 0, "false_alarms": 0, "not_scored": 0, "leads": []})
            row["fired"] += 1
            key = {"true_positive": "true_positives", "late": "late", "false_alarm": "false_alarms",
                   "not_scored": "not_scored"}[e.outcome]
            row[key] += 1
            if e.lead_s is not None:
                row["leads"].append(e.lead_s)
        out = []
        for row in sorted(rows.values(), key=lambda r: (r["alert"], r["severity"])):
            leads = row.pop("leads")
            row["lead_time_seconds"] = lead_stats(leads)
            out.append(row)
        return out

    def per_sla(self) -> list[dict]:
        keys = sorted({(b.client, b.sla) for b in self.breaches} |
                      {(e.client, e.sla) for e in self.episodes if e.outcome != "not_scored"})
        out = []
        for client, sla in keys:
            idx = [i for i, b in enumerate(self.breaches) if (b.client, b.sla) == (client, sla)]
            eps = [e for e in self.episodes if (e.client, e.sla) == (client, sla)]
            leads = sorted(self.detected[i][0] for i in idx if i in self.detected)
            out.append({
                "client": client, "sla": sla, "breaches": len(idx),
                "detected": sum(i in self.detected for i in idx), "missed": sum(i not in self.detected for i in idx),
                "breach_times": [iso(self.breaches[i].at_s) for i in idx],
                "first_alerts": [self.detected[i][1] if i in self.detected else None for i in idx],
                "alerts_fired": len(eps), "false_alarms": sum(e.outcome == "false_alarm" for e in eps),
                "late": sum(e.outcome == "late" for e in eps), "lead_time_seconds": lead_stats(leads),
            })
        return out


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


# --- classification -----------------------------------------------------------------------------------------

def predicts(e: Episode, b: Breach, horizon_s: float, grace_s: float) -> bool:
    """The alert episode announced the breach: it started before it (at most `horizon_s` before) and was
    still firing, or stopped at most `grace_s` before it (an alert that cleared long before did not)."""
    return e.start_s <= b.at_s <= e.end_s + grace_s and b.at_s - e.start_s <= horizon_s


def score(name: str, rules: int, episodes: list[Episode], breaches: list[Breach], horizon_s: float,
          grace_s: float) -> Scored:
    """Classify alert episodes and breaches (see the module docstring)."""
    by_sla: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, b in enumerate(breaches):
        by_sla[(b.client, b.sla)].append(i)
    detected: dict[int, tuple[float, str]] = {}
    for e in episodes:
        if e.category not in SLA_CATEGORIES or e.client == "all" or e.sla == "all":
            e.outcome = "not_scored"
            continue
        mine = [breaches[i] for i in by_sla.get((e.client, e.sla), [])]
        following = [b for b in mine if predicts(e, b, horizon_s, grace_s)]
        if following:
            e.outcome, e.lead_s = "true_positive", following[0].at_s - e.start_s
        elif any(b.at_s <= e.start_s <= b.end_s for b in mine):
            e.outcome = "late"
        else:
            e.outcome = "false_alarm"
    for i, b in enumerate(breaches):
        before = [e for e in episodes if e.outcome != "not_scored" and (e.client, e.sla) == (b.client, b.sla)
                  and predicts(e, b, horizon_s, grace_s)]
        if before:
            first = min(before, key=lambda e: (e.start_s, e.alert))
            detected[i] = (b.at_s - first.start_s, f"{first.alert}/{first.severity}")
    return Scored(name, rules, episodes, breaches, detected)


# --- alert episodes -----------------------------------------------------------------------------------------

def episodes_from_series(alert: str, severity: str, category: str, client: str, sla: str, for_s: float,
                         step_s: float, series: Iterable[list[float]]) -> list[Episode]:
    """Firing episodes from the evaluation instants at which the alert's expression returned each series:
    active from the first instant of a run of consecutive evaluations, firing once active for `for_s`."""
    spans: list[tuple[float, float, float]] = []
    for times in series:
        run: list[float] = []
        for t in sorted(times):
            if run and t - run[-1] > step_s * 1.5:
                spans.extend(_firing(run, for_s))
                run = []
            run.append(t)
        if run:
            spans.extend(_firing(run, for_s))
    spans.sort()
    merged: list[list[float]] = []
    for pending, start, end in spans:  # series of one alert firing together are one notification
        if merged and start <= merged[-1][2] + step_s * 1.5:
            merged[-1][2] = max(merged[-1][2], end)
            merged[-1][0] = min(merged[-1][0], pending)
        else:
            merged.append([pending, start, end])
    return [Episode(alert, severity, category, client, sla, p, s, e) for p, s, e in merged]


def _firing(run: list[float], for_s: float) -> list[tuple[float, float, float]]:
    active = run[0]
    firing = [t for t in run if t - active >= for_s]
    return [(active, firing[0], run[-1])] if firing else []


# --- breaches -----------------------------------------------------------------------------------------------

class BreachTracker:
    """Breaches from the exported series at each scrape: met == 0 with enough volume in the period."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.breaches: list[Breach] = []
        self._open: dict[tuple[str, str], Breach] = {}  # in breach now
        self._last: dict[tuple[str, str], Breach] = {}  # the latest breach, for merging
        self._period: dict[tuple[str, str], float] = {}

    def observe(self, t_s: float, figures: dict[tuple[str, str], dict]) -> None:
        gap = self.settings.merge_gap_s
        for key, f in figures.items():
            met, start = f.get("met"), f.get("period_start")
            if met is None:
                continue
            volume = f.get("decided", 0.0) if not f.get("uptime") else f.get("known", 0.0)
            gate = self.settings.uptime_min_volume_s if f.get("uptime") else self.settings.min_volume
            new_period = start is not None and self._period.get(key) not in (None, start) and not f.get("rolling")
            if start is not None:
                self._period[key] = start
            if new_period:
                self._open.pop(key, None)
                self._last.pop(key, None)
            failing = met == 0 and volume >= gate
            current = self._open.get(key)
            if failing:
                if current is not None:
                    current.end_s = t_s
                    continue
                last = self._last.get(key)
                if last is not None and t_s - last.end_s <= gap:
                    last.end_s = t_s  # a short recovery: the same breach goes on
                    self._open[key] = last
                    continue
                b = Breach(key[0], key[1], t_s, t_s, f.get("value"))
                self.breaches.append(b)
                self._open[key] = self._last[key] = b
            elif current is not None:
                del self._open[key]
