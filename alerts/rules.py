"""Prometheus recording and alerting rules, generated from the contracts and the alerting config.

Pure: `plan(contracts, alerting)` builds a typed model of every rule (nothing is read but the arguments),
`rule_files(...)` renders it to Prometheus rule-file dicts, and `write_rules(dir, ...)` writes them.

Layout: one file per client (`slamon-<client>.rules.yml`, one group per SLA holding its recording rules
first and its alerts after them, so alerts read the values recorded in the same evaluation) and
`slamon-pipeline.rules.yml` (per-client data freshness and the workers).

Every alert carries the labels `severity` (the alerting config's `severity_labels` value of its level
page | ticket | info: critical | warning | info by default), `client`, `sla`, `category` (burn_rate, breach,
calls, uptime, penalty, data_missing, pipeline, worker) and the config's static `labels:` (team, env, ...);
burn-rate alerts add `long_window` and `short_window`. No SLA alert keeps the worker's `instance` label (the
expressions aggregate by their own labels), so an alert keeps its identity when its partition moves to
another worker. Annotations: `summary` (with the live value), `description`, `runbook_url`
(<runbook_base_url>/<alert>.md) and `dashboard_url` (<dashboard_base_url>/d/<uid>?var-client=..&var-sla=..).
Pipeline-wide alerts use client="all"; per-client data alerts use sla="all".

Burn-rate factors (see alerts/windows.yaml and alerts/README.md):

    factor = budget_share x period / long_window      (clamped to >= min_factor)

so the workbook's 14.4 / 6 / 3 / 1 hold for 30-day periods and a weekly SLA gets 3.36 / 1.4 / 1 / 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from alerts.config import Alerting, Tier, TierOverride
from monitor import conventions as names
from monitor.contracts import CallSla, Contracts, Rolling, TicketSla, UptimeSla
from monitor.conventions import REC_ALLOWED, REC_BAD, REC_BURN, REC_BURN_FACTOR, REC_DECIDED

DAY = 86400
CLIENT_DASHBOARD = "slamon-client"  # the uids of alerts/dashboards.py (a unit test keeps them equal)
PIPELINE_DASHBOARD = "slamon-pipeline"
PERIOD_SECONDS = {"month": 30 * DAY, "week": 7 * DAY, "day": DAY}

ALERTS = {  # name -> (category, one line for the README / runbooks index)
    "SlamonErrorBudgetBurn": ("burn_rate", "error budget burning faster than the tier's factor over both windows"),
    "SlamonBreachImminent": ("breach", "open items whose deadline falls within the imminent window"),
    "SlamonItemsAtRisk": ("breach", "open items past the warning stage that leaves them 30 % of their time"),
    "SlamonItemsInLastStage": ("breach", "open items in the SLA's last warning stage"),
    "SlamonProjectedBreach": ("breach", "projected end-of-period value misses the target"),
    "SlamonErrorBudgetExhausted": ("breach", "period-to-date error budget spent (<= 0)"),
    "SlamonPenaltyExposure": ("penalty", "projected service credit above the configured share of the fee"),
    "SlamonPenaltyCreditAccrued": ("penalty", "period-to-date value already earns a service credit"),
    "SlamonCallServiceLevelLow": ("calls", "service level over the short window below target"),
    "SlamonCallLongestWait": ("calls", "a caller has waited longer than the threshold"),
    "SlamonAbandonRateSpike": ("calls", "abandon rate over the short window far above target"),
    "SlamonServiceDown": ("uptime", "newest probe of a service says down"),
    "SlamonDowntimeBudgetLow": ("uptime", "less than the configured share of the downtime budget left"),
    "SlamonProbeDataMissing": ("data_missing", "newest probe older than N probe intervals"),
    "SlamonProbeDataAbsent": ("data_missing", "no probe series for the service at all"),
    "SlamonNoEvents": ("data_missing", "no events from a client for N minutes (event-time lag)"),
    "SlamonClientDataAbsent": ("data_missing", "no slamon series for a client (no worker owns it)"),
    "SlamonDeadLettersRising": ("pipeline", "dead-lettered events above the threshold"),
    "SlamonConsumerLagHigh": ("pipeline", "input messages not yet applied above the threshold"),
    "SlamonCheckpointStale": ("pipeline", "newest state snapshot too old"),
    "SlamonWorkerDown": ("worker", "a slamon worker target is down (up == 0)"),
    "SlamonWorkersAbsent": ("worker", "no slamon worker target known to Prometheus at all"),
}


# --- model ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cond:
    """One comparison the alert makes on raw series, as data (the rendered PromQL says the same).

    kind gauge: value of `metrics` (summed) `op` threshold; increase: increase over `window` of the
    counter `op` threshold; absent: no series matching `labels` exists (op/threshold unused).
    """

    metrics: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    op: Literal[">", "<", ">=", "<=", "==", "!="]
    threshold: float = 0.0
    kind: Literal["gauge", "increase", "absent"] = "gauge"
    window: int = 0


@dataclass(frozen=True)
class RatioTier:
    """Error ratio over every window in `windows` past `threshold`, and volume over `gate_window` >= gate.

    `bound` is the number the rendered expression compares with: the burn-rate factor (value "burn":
    bad/decided/allowed > bound), the target (value "good": 1 - bad/decided < bound) or the error ratio
    itself (value "error": bad/decided > bound).
    """

    name: str
    windows: tuple[int, ...]
    threshold: float  # on the error ratio
    gate_window: int
    bound: float


@dataclass(frozen=True)
class RatioSpec:
    """Alerts on the windowed error ratio of an SLA's counters (burn rates, call windows)."""

    source: Literal["sla", "uptime"]
    tiers: tuple[RatioTier, ...]
    gate: float
    allowed: float  # the SLA's allowed error ratio
    value: Literal["burn", "error", "good"]  # what $value is: burn rate, error ratio, 1 - error ratio
    min_z: float = 0.0  # pages: the long window's bad count must exceed chance at `allowed` by this z-score


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    client: str
    sla: str
    category: str
    expr: str
    for_s: int
    summary: str
    description: str
    runbook_url: str
    extra_labels: tuple[tuple[str, str], ...] = ()
    severity_label: str = ""  # the `severity` label value ("" : the level itself)
    static_labels: tuple[tuple[str, str], ...] = ()  # the alerting config's `labels:`
    dashboard_url: str = ""
    keep: tuple[str, ...] = ()  # series labels that survive into the alert
    keep_firing_for_s: int = 0  # Prometheus keeps it firing this long after the condition clears
    conds: tuple[Cond, ...] = ()  # gauge/increase/absent conditions, ANDed; conds[0] gives $value
    ratio: RatioSpec | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {"severity": self.severity_label or self.severity, "client": self.client, "sla": self.sla,
                "category": self.category, **dict(self.extra_labels), **dict(self.static_labels)}

    @property
    def annotations(self) -> dict[str, str]:
        out = {"summary": self.summary, "description": self.description, "runbook_url": self.runbook_url}
        if self.dashboard_url:
            out["dashboard_url"] = self.dashboard_url
        return out

    def as_rule(self) -> dict:
        rule: dict = {"alert": self.name, "expr": self.expr}
        if self.for_s:
            rule["for"] = prom_duration(self.for_s)
        if self.keep_firing_for_s:
            rule["keep_firing_for"] = prom_duration(self.keep_firing_for_s)
        rule["labels"] = self.labels
        rule["annotations"] = self.annotations
        return rule


@dataclass(frozen=True)
class Record:
    record: str
    expr: str
    labels: tuple[tuple[str, str], ...] = ()

    def as_rule(self) -> dict:
        rule: dict = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


@dataclass
class Group:
    name: str
    file: str
    client: str | None = None
    sla: str | None = None
    records: list[Record] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # tiers dropped and why (shown by the CLI)

    def as_group(self) -> dict:
        return {"name": self.name, "rules": [r.as_rule() for r in self.records] +
                [a.as_rule() for a in self.alerts]}


@dataclass(frozen=True)
class BurnTier:
    name: str
    severity: str
    factor: float
    long_window: int
    short_window: int


@dataclass(frozen=True)
class SlaFacts:
    """What the rules need from one SLA of the contracts."""

    client: str
    sla: str
    kind: str
    period_s: int
    period_label: str
    target: float
    allowed: float | None  # allowed error ratio (None: no ratio budget: asa, aht, csat mean)
    unit: Literal["ratio", "seconds", "score"]
    lower_is_better: bool
    source: Literal["sla", "uptime"]


def sla_facts(client: str, sla) -> SlaFacts:
    period = sla.period
    if isinstance(period, Rolling):
        period_s, label = period.rolling // 1_000_000, f"rolling {prom_duration(period.rolling // 1_000_000)}"
    else:
        period_s, label = PERIOD_SECONDS[period], {"month": "monthly", "week": "weekly", "day": "daily"}[period]
    allowed = sla.allowed_error
    return SlaFacts(client=client, sla=sla.name, kind=sla.kind, period_s=period_s, period_label=label,
                    target=sla.goal, allowed=None if allowed is None else _clean(allowed), unit=sla.unit,
                    lower_is_better=sla.lower_is_better,
                    source="uptime" if isinstance(sla, UptimeSla) else "sla")


# --- burn-rate factors ------------------------------------------------------------------------------------


def burn_factor(budget_share: float, period_s: int, long_window_s: int, min_factor: float = 1.0) -> float:
    """factor = budget_share x period / long_window, floored at min_factor (below 1x the SLA is on track)."""
    return _clean(max(min_factor, budget_share * period_s / long_window_s))


def burn_tiers(facts: SlaFacts, alerting: Alerting) -> tuple[list[BurnTier], list[str]]:
    """The SLA's tiers after overrides, and notes on tiers dropped."""
    data = alerting.tiers_data
    override = alerting.override(facts.client, facts.sla)
    settings = {**alerting.burn_rate.tiers, **override.tiers}
    tiers: list[BurnTier] = []
    notes: list[str] = []
    known = {t.name for t in data.tiers}
    for name in settings:
        if name not in known:
            raise ValueError(f"{facts.client}/{facts.sla}: unknown burn-rate tier {name!r}; known: {sorted(known)}")
    for tier in data.tiers:
        setting = settings.get(tier.name)
        if setting is False:
            notes.append(f"{tier.name}: disabled by the alerting config")
            continue
        tier = _apply(tier, setting)
        if tier.long_window > facts.period_s:
            notes.append(f"{tier.name}: long window {prom_duration(tier.long_window)} exceeds the period "
                         f"({facts.period_label})")
            continue
        if isinstance(setting, TierOverride) and setting.factor is not None:
            factor = _clean(setting.factor)
        else:
            factor = burn_factor(tier.budget_share, facts.period_s, tier.long_window, data.min_factor)
        if facts.allowed is not None and factor * facts.allowed >= 1:
            notes.append(f"{tier.name}: unreachable ({factor}x of an allowed error ratio of "
                         f"{facts.allowed} exceeds 100 % bad)")
            continue
        tiers.append(BurnTier(tier.name, tier.severity, factor, tier.long_window, tier.short_window))
    return tiers, notes


def _apply(tier: Tier, setting) -> Tier:
    if not isinstance(setting, TierOverride):
        return tier
    changes = {k: getattr(setting, k) for k in ("budget_share", "long_window", "short_window", "severity")
               if getattr(setting, k) is not None}
    return tier.model_copy(update=changes)


# --- the plan ---------------------------------------------------------------------------------------------


def plan(contracts: Contracts, alerting: Alerting | None = None) -> list[Group]:
    """Every rule group: one per (client, SLA), then the pipeline group."""
    alerting = alerting if alerting is not None else Alerting()
    groups = []
    for client, contract in contracts.clients.items():
        for sla in contract.slas:
            groups.append(_sla_group(client, sla, alerting))
    groups.append(_pipeline_group(contracts, alerting))
    return groups


def rule_files(contracts: Contracts, alerting: Alerting | None = None) -> dict[str, dict]:
    """File name -> Prometheus rule file ({"groups": [...]})."""
    out: dict[str, dict] = {}
    for group in plan(contracts, alerting):
        out.setdefault(group.file, {"groups": []})["groups"].append(group.as_group())
    return out


def write_rules(directory: str | Path, contracts: Contracts, alerting: Alerting | None = None) -> list[Path]:
    """Write the rule files into `directory` (created); returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rule_files(contracts, alerting).items():
        path = directory / name
        path.write_text(HEADER + dump_yaml(content), encoding="utf-8")
        written.append(path)
    return written


HEADER = "# Generated by `slamon rules` from the contracts and the alerting config. Do not edit.\n"


def _sla_group(client: str, sla, alerting: Alerting) -> Group:
    facts = sla_facts(client, sla)
    override = alerting.override(client, sla.name)
    group = Group(name=f"slamon:{client}:{sla.name}", file=f"slamon-{_file_part(client)}.rules.yml",
                  client=client, sla=sla.name)
    sel = _sel(client=client, sla=sla.name)
    ctx = _Ctx(alerting, override, facts, group)

    tiers: list[BurnTier] = []
    if facts.allowed is not None and facts.allowed > 0:
        tiers, notes = burn_tiers(facts, alerting)
        group.notes.extend(notes)
    elif facts.allowed == 0:
        group.notes.append("burn rate: target 100 % leaves no error budget; use SlamonErrorBudgetExhausted")
    call_window = alerting.calls.window if isinstance(sla, CallSla) and sla.judges_items else None
    windows = sorted({w for t in tiers for w in (t.long_window, t.short_window)} |
                     ({call_window} if call_window else set()))
    if windows:
        group.records.extend(_ratio_records(facts, windows))

    # burn rate, one rule per tier, labelled with its windows (Alertmanager groups by alertname, client and
    # sla, so tiers firing together are still one notification)
    min_volume = override.min_volume if override.min_volume is not None else (
        alerting.burn_rate.uptime_min_volume if facts.source == "uptime" else alerting.burn_rate.min_volume)
    for tier in tiers:
        volume = min_volume  # a page also needs the bad items to be many, not a few of a small sample
        if tier.severity == "page" and facts.source != "uptime":
            volume = max(volume, math.ceil(alerting.burn_rate.min_bad / (tier.factor * facts.allowed) - 1e-9))
        ctx.add(_burn_alert(ctx, tier, volume, sel))
        if ctx.enabled("SlamonErrorBudgetBurn"):  # the factor each tier's alert compares with, for the dashboards
            group.records.append(Record(REC_BURN_FACTOR, f"vector({_num(tier.factor)})", (
                ("client", client), ("sla", sla.name), (names.TIER, tier.name),
                ("long_window", prom_duration(tier.long_window)), ("short_window", prom_duration(tier.short_window)))))

    if isinstance(sla, TicketSla):
        _ticket_alerts(ctx, sla, sel)
    _projection_alerts(ctx, sla, sel)
    if isinstance(sla, CallSla):
        _call_alerts(ctx, sla, sel, call_window)
    if isinstance(sla, UptimeSla):
        _uptime_alerts(ctx, sla)
    if sla.penalty is not None:
        _penalty_alerts(ctx, sla, sel)
    return group


@dataclass
class _Ctx:
    alerting: Alerting
    override: object
    facts: SlaFacts
    group: Group

    def enabled(self, name: str) -> bool:
        return name not in self.alerting.disable and name not in self.override.disable

    def severity(self, name: str, default: str) -> str:
        return self.override.severity.get(name) or self.alerting.severity.get(name) or default

    def add(self, alert: Alert | None) -> None:
        if alert is not None and self.enabled(alert.name):
            self.group.alerts.append(alert)

    def alert(self, name: str, default_severity: str, expr: str, for_s: int, summary: str, description: str,
              **kw) -> Alert:
        severity = self.severity(name, default_severity)
        return Alert(name=name, severity=severity, client=self.facts.client,
                     sla=self.facts.sla, category=kw.pop("category", ALERTS[name][0]), expr=expr, for_s=for_s,
                     summary=summary, description=description, runbook_url=self.alerting.runbook(name),
                     **conventions(self.alerting, self.facts.client, self.facts.sla, severity), **kw)


def conventions(alerting: Alerting, client: str, sla: str, severity: str) -> dict:
    """The fields every alert takes from the alerting config: severity label value, static labels, dashboard."""
    if sla in ("all", "pipeline"):
        dashboard = alerting.dashboard(PIPELINE_DASHBOARD)
    else:
        dashboard = alerting.dashboard(CLIENT_DASHBOARD, client=client, sla=sla)
    return {"severity_label": alerting.severity_label(severity),
            "static_labels": tuple(sorted(alerting.labels.items())), "dashboard_url": dashboard}


def _ratio_records(facts: SlaFacts, windows: list[int]) -> list[Record]:
    sel = _sel(client=facts.client, sla=facts.sla)
    own = (("client", facts.client), ("sla", facts.sla))  # also keeps same-named records distinct (lint)
    out = [Record(REC_ALLOWED, f"vector({_num(facts.allowed)})", own)]
    for w in windows:
        d = prom_duration(w)
        if facts.source == "uptime":
            decided = (f"sum by (client, sla) (increase({names.UPTIME_UP_SECONDS}{sel}[{d}]))\n"
                       f"+ sum by (client, sla) (increase({names.UPTIME_DOWNTIME_SECONDS}{sel}[{d}]))")
            bad = f"sum by (client, sla) (increase({names.UPTIME_DOWNTIME_SECONDS}{sel}[{d}]))"
        else:
            decided = f"sum by (client, sla) (increase({names.SLA_DECIDED_TOTAL}{sel}[{d}]))"
            bad = f"sum by (client, sla) (increase({names.SLA_BAD_TOTAL}{sel}[{d}]))"
        out.append(Record(REC_DECIDED.format(w=d), decided, own))
        out.append(Record(REC_BAD.format(w=d), bad, own))
        out.append(Record(REC_BURN.format(w=d),
                          f"{REC_BAD.format(w=d)}{sel}\n/ {REC_DECIDED.format(w=d)}{sel}\n/ {_num(facts.allowed)}",
                          own))
    return out


def _burn_alert(ctx: _Ctx, t: BurnTier, min_volume: float, sel: str) -> Alert:
    facts = ctx.facts
    lw, sw = prom_duration(t.long_window), prom_duration(t.short_window)
    expr = (f"{REC_BURN.format(w=lw)}{sel} > {_num(t.factor)}\n"
            f"and {REC_BURN.format(w=sw)}{sel} > {_num(t.factor)}\n"
            f"and {REC_DECIDED.format(w=lw)}{sel} >= {_num(min_volume)}")
    z = ctx.alerting.burn_rate.page_min_z
    significant = t.severity == "page" and facts.source != "uptime" and z > 0
    if significant:  # more bad items than the objective's own rate explains by chance (z-score of the count)
        a = facts.allowed
        bad, decided = f"{REC_BAD.format(w=lw)}{sel}", f"{REC_DECIDED.format(w=lw)}{sel}"
        expr += f"\nand ({bad} - {_num(a)} * {decided}) / sqrt({_num(_clean(a * (1 - a)))} * {decided}) > {_num(z)}"
    ratio_tier = RatioTier(t.name, (t.long_window, t.short_window), _clean(t.factor * facts.allowed),
                           t.long_window, t.factor)
    unit = "observed seconds" if facts.source == "uptime" else "decided items"
    return ctx.alert(
        "SlamonErrorBudgetBurn", t.severity, expr, ctx.alerting.tiers_data.for_[t.severity],
        summary=f"{facts.client} {facts.sla}: error budget burning at {{{{ $value | humanize }}}}x the "
                f"sustainable rate over {lw}",
        description=(f"The {facts.kind} SLA ({facts.period_label} period, {_pct(facts.allowed)} of items may "
                     f"fail) spends its error budget too fast: {_num(t.factor)}x over {lw} and {sw} "
                     f"({_pct(t.factor * facts.allowed)} bad; tier {t.name}), at least {_num(min_volume)} "
                     f"{unit} in the long window" + (
                         f", and more bad items than chance at the objective explains (z > {_num(z)})."
                         if significant else ".")),
        extra_labels=(("long_window", lw), ("short_window", sw)),
        ratio=RatioSpec(facts.source, (ratio_tier,), min_volume, facts.allowed, "burn", z if significant else 0.0),
    )


def _ticket_alerts(ctx: _Ctx, sla: TicketSla, sel: str) -> None:
    facts, cfg = ctx.facts, ctx.alerting.imminent
    within = ctx.override.imminent_within or cfg.within
    page_prios = [p for p in cfg.page_priorities if p in sla.target]
    base = {"client": facts.client, "sla": facts.sla, "within": within}
    soon = names.SLA_BREACHING_SOON_ITEMS
    if page_prios:
        rx = "|".join(_rx(p) for p in page_prios)
        ctx.add(ctx.alert(
            "SlamonBreachImminent", "page",
            f"sum by (client, sla, priority) ({soon}{_sel(**base)[:-1]}, priority=~{_q(rx)}}}) > 0",
            cfg.for_,
            summary=f"{facts.client} {facts.sla}: {{{{ $value | humanize }}}} {{{{ $labels.priority }}}} "
                    f"item(s) breach within {within}",
            description=f"Open {'/'.join(page_prios)} items whose {facts.kind.replace('_', ' ')} deadline "
                        f"falls within {within}. Act on them now: each one becomes a breach.",
            keep=("client", "sla", "priority"), keep_firing_for_s=cfg.keep_firing_for,
            conds=(Cond((soon,), _labels(**base, priority=page_prios[0]), ">", 0),),
        ))
    others = f", priority!~{_q('|'.join(_rx(p) for p in page_prios))}" if page_prios else ""
    ctx.add(ctx.alert(
        "SlamonBreachImminent", "ticket",
        f"sum by (client, sla, priority) ({soon}{_sel(**base)[:-1]}{others}}}) > 0",
        cfg.for_,
        summary=f"{facts.client} {facts.sla}: {{{{ $value | humanize }}}} item(s) breach within {within}",
        description=(f"Open items (priorities other than {'/'.join(page_prios)}) whose " if page_prios else
                     "Open items whose ") + f"{facts.kind.replace('_', ' ')} deadline falls within {within}.",
        keep=("client", "sla", "priority"), keep_firing_for_s=cfg.keep_firing_for,
        conds=(Cond((soon,), _labels(**base), ">", 0),),
    ))
    _at_risk_alert(ctx, sla)
    last = sla.stages[-1]
    _stage_alert(ctx, "SlamonItemsInLastStage", last, f'stage="{last}"', cfg.last_stage_for,
                 f"Items in the last warning stage ({_pct(last)} of the target elapsed) of the "
                 f"{facts.kind.replace('_', ' ')} SLA.")


def _stage_alert(ctx: _Ctx, name: str, stage: float, stage_matcher: str, for_s: int, description: str) -> None:
    """One grouped ticket per client/SLA carrying the count of open items past `stage` (the stage gauge counts
    each item at the highest stage it reached, so `stage_matcher` picks that stage and any later one)."""
    facts = ctx.facts
    ctx.add(ctx.alert(
        name, "ticket",
        f"sum by (client, sla) ({names.SLA_AT_RISK_ITEMS}{_sel(client=facts.client, sla=facts.sla)[:-1]}, "
        f"{stage_matcher}}}) > 0",
        for_s,
        summary=f"{facts.client} {facts.sla}: {{{{ $value | humanize }}}} open item(s) past {_pct(stage)} of "
                f"their allowed time",
        description=description,
        keep=("client", "sla"), keep_firing_for_s=ctx.alerting.imminent.keep_firing_for,
        conds=(Cond((names.SLA_AT_RISK_ITEMS,), _labels(client=facts.client, sla=facts.sla, stage=str(stage)),
                    ">", 0),),
    ))


def at_risk_stage(stages: tuple[float, ...], left_share: float) -> float | None:
    """The contract's highest warning stage that still leaves `left_share` of the allowed time (None: none)."""
    fit = [s for s in stages if s <= 1 - left_share + 1e-9]
    return max(fit) if fit else None


def _at_risk_alert(ctx: _Ctx, sla: TicketSla) -> None:
    """One grouped ticket per client/SLA carrying the count of items past the warning stage (not one per item:
    the floor works the list on the dashboard)."""
    facts, cfg = ctx.facts, ctx.alerting.imminent
    stage = at_risk_stage(sla.stages, cfg.at_risk_left_share)
    if stage is None:
        ctx.group.notes.append(f"SlamonItemsAtRisk: no stage of {list(sla.stages)} leaves "
                               f"{_pct(cfg.at_risk_left_share)} of the allowed time; add one to the contract")
        return
    later = "|".join(_rx(str(s)) for s in sla.stages if s >= stage)
    _stage_alert(ctx, "SlamonItemsAtRisk", stage, f"stage=~{_q(later)}", cfg.at_risk_for,
                 f"Open items that used at least {_pct(stage)} of their {facts.kind.replace('_', ' ')} time "
                 f"(the contract's warning stage {_pct(stage)}): each still has {_pct(1 - stage)} of it. Work "
                 f"them from the dashboard's at-risk list.")


def _volume(ctx: _Ctx, sel: str, n: float) -> tuple[str, Cond]:
    """Period-to-date volume >= n: decided items, or probe-covered seconds for uptime."""
    facts = ctx.facts
    labels = _labels(client=facts.client, sla=facts.sla)
    if facts.source == "uptime":
        expr = (f"sum by (client, sla) ({names.UPTIME_UP_SECONDS}{sel})\n"
                f"  + sum by (client, sla) ({names.UPTIME_DOWNTIME_SECONDS}{sel})")
        return f"({expr}) >= {_num(n)}", Cond((names.UPTIME_UP_SECONDS, names.UPTIME_DOWNTIME_SECONDS),
                                               labels, ">=", n)
    return (f"{names.SLA_PERIOD_DECIDED}{sel} >= {_num(n)}",
            Cond((names.SLA_PERIOD_DECIDED,), labels, ">=", n))


def _projection_alerts(ctx: _Ctx, sla, sel: str) -> None:
    facts, cfg = ctx.facts, ctx.alerting
    labels = _labels(client=facts.client, sla=facts.sla)
    metric = {"ratio": names.SLA_PROJECTED_RATIO, "seconds": names.SLA_PROJECTED_SECONDS,
              "score": names.SLA_PROJECTED_SCORE}[facts.unit]
    human = {"ratio": "humanizePercentage", "seconds": "humanizeDuration", "score": "humanize"}[facts.unit]
    op = ">" if facts.lower_is_better else "<"
    n = ctx.override.projected_min_volume
    if n is None:
        n = cfg.projected.uptime_min_volume if facts.source == "uptime" else cfg.projected.min_volume
    gate, gate_cond = _volume(ctx, sel, n)
    target = _show(facts.target, facts.unit)
    ctx.add(ctx.alert(
        "SlamonProjectedBreach", "ticket",
        f"{_by_sla(op, metric, sel)} {op} {_num(facts.target)}\nand on (client, sla)\n{gate}", cfg.projected.for_,
        summary=f"{facts.client} {facts.sla}: projected end-of-period value {{{{ $value | {human} }}}} "
                f"misses the target {target}",
        description=f"At the current pace the {facts.period_label} period of the {facts.kind} SLA ends "
                    f"{'above' if facts.lower_is_better else 'below'} its target {target} (projection: volume "
                    f"grows linearly, the rest of the period performs like the last 24 h).",
        keep=("client", "sla"),
        conds=(Cond((metric,), labels, op, facts.target), gate_cond),
    ))
    if facts.unit == "score":
        return  # a mean score has no error budget
    n = cfg.burn_rate.uptime_min_volume if facts.source == "uptime" else cfg.budget.min_volume
    gate, gate_cond = _volume(ctx, sel, n)
    budget = names.SLA_ERROR_BUDGET_REMAINING
    ctx.add(ctx.alert(
        "SlamonErrorBudgetExhausted", "ticket", f"{_by_sla('<=', budget, sel)} <= 0\nand on (client, sla)\n{gate}",
        cfg.budget.for_,
        summary=f"{facts.client} {facts.sla}: error budget exhausted ({{{{ $value | humanizePercentage }}}} "
                f"remaining)",
        description=f"The {facts.period_label} period has spent its whole error budget: the period-to-date "
                    f"value misses the target {target}. Only better performance on the remaining volume "
                    f"can bring it back.",
        keep=("client", "sla"),
        conds=(Cond((budget,), labels, "<=", 0), gate_cond),
    ))


def _call_alerts(ctx: _Ctx, sla: CallSla, sel: str, window: int | None) -> None:
    facts, cfg = ctx.facts, ctx.alerting.calls
    if sla.answered_within_us is not None and window:
        w = prom_duration(window)
        ratio = f"{REC_BAD.format(w=w)}{sel}\n  / {REC_DECIDED.format(w=w)}{sel}"
        ctx.add(ctx.alert(
            "SlamonCallServiceLevelLow", "ticket",
            f"(1 - (\n  {ratio}\n)) < {_num(facts.target)}\nand {REC_DECIDED.format(w=w)}{sel} >= "
            f"{cfg.min_calls}",
            cfg.service_level_for,
            summary=f"{facts.client} {facts.sla}: service level {{{{ $value | humanizePercentage }}}} over the "
                    f"last {w} (target {_pct(facts.target)})",
            description=f"Fewer than {_pct(facts.target)} of calls answered within "
                        f"{sla.within // 1_000_000}s over the last {w} (at least {cfg.min_calls} calls). "
                        f"Check staffing and the queue now; the {facts.period_label} figure follows.",
            ratio=RatioSpec("sla", (RatioTier("window", (window,), _clean(1 - facts.target), window, facts.target),),
                            cfg.min_calls, facts.allowed, "good"),
        ))
    if sla.value_is_bad_share and window:
        w = prom_duration(window)
        threshold = _clean(cfg.abandon_spike_factor * facts.target)
        ctx.add(ctx.alert(
            "SlamonAbandonRateSpike", "ticket",
            f"{REC_BAD.format(w=w)}{sel}\n  / {REC_DECIDED.format(w=w)}{sel}\n> {_num(threshold)}\n"
            f"and {REC_DECIDED.format(w=w)}{sel} >= {cfg.min_calls}",
            cfg.abandon_for,
            summary=f"{facts.client} {facts.sla}: abandon rate {{{{ $value | humanizePercentage }}}} over the "
                    f"last {w} (target {_pct(facts.target)})",
            description=f"Callers hang up {_num(cfg.abandon_spike_factor)}x more often than the contract "
                        f"allows over the last {w} (at least {cfg.min_calls} calls).",
            ratio=RatioSpec("sla", (RatioTier("window", (window,), threshold, window, threshold),), cfg.min_calls,
                            facts.allowed, "error"),
        ))
    if sla.answered_within_us is not None:
        limit = ctx.override.longest_wait_seconds or cfg.longest_wait_seconds or 3 * sla.within / 1_000_000
        queues = sorted(sla.queues)
        qsel = _sel(client=facts.client, queue=("=~", "|".join(_rx(q) for q in queues))) if queues else \
            _sel(client=facts.client)
        ctx.add(ctx.alert(
            "SlamonCallLongestWait", "ticket",
            f"max by (client, queue) ({names.CALLS_LONGEST_WAIT}{qsel}) > {_num(limit)}",
            cfg.longest_wait_for,
            summary=f"{facts.client} queue {{{{ $labels.queue }}}}: a caller has waited "
                    f"{{{{ $value | humanizeDuration }}}}",
            description=f"The oldest waiting call exceeds {_num(limit)}s (the SLA answers within "
                        f"{sla.within // 1_000_000}s).",
            keep=("client", "queue"),
            conds=(Cond((names.CALLS_LONGEST_WAIT,),
                        _labels(client=facts.client, queue=queues[0] if queues else "other"), ">", limit),),
        ))


def _uptime_alerts(ctx: _Ctx, sla: UptimeSla) -> None:
    facts, cfg = ctx.facts, ctx.alerting.uptime
    ssel = _sel(client=facts.client, service=sla.service)
    slabels = _labels(client=facts.client, service=sla.service)
    extra = (("service", sla.service),)
    ctx.add(ctx.alert(
        "SlamonServiceDown", "page", f"max by (client, service) ({names.UPTIME_SERVICE_UP}{ssel}) == 0",
        cfg.down_for,
        summary=f"{facts.client} {sla.service} is down",
        description=f"The newest probe of {sla.service} reports down (target availability "
                    f"{_pct(facts.target)}).",
        extra_labels=extra, keep=("client", "service"),
        conds=(Cond((names.UPTIME_SERVICE_UP,), slabels, "==", 0),),
    ))
    labels = _labels(client=facts.client, sla=facts.sla)
    sel = _sel(client=facts.client, sla=facts.sla)
    budget = names.SLA_ERROR_BUDGET_REMAINING
    ctx.add(ctx.alert(
        "SlamonDowntimeBudgetLow", "ticket",
        f"{_by_sla('<', budget, sel)} < {_num(cfg.budget_low_remaining)}\nand {_by_sla('<', budget, sel)} > 0",
        cfg.budget_for,
        summary=f"{facts.client} {sla.service}: {{{{ $value | humanizePercentage }}}} of the downtime "
                f"budget left",
        description=f"Less than {_pct(cfg.budget_low_remaining)} of the {facts.period_label} downtime budget "
                    f"({_pct(facts.allowed)} of the observed time) remains.",
        extra_labels=extra, keep=("client", "sla"),
        conds=(Cond((budget,), labels, "<", cfg.budget_low_remaining), Cond((budget,), labels, ">", 0)),
    ))
    limit = cfg.probe_missing_intervals * sla.probe_interval / 1_000_000
    ctx.add(ctx.alert(
        "SlamonProbeDataMissing", "ticket",
        f"max by (client, service) ({names.UPTIME_LAST_PROBE_AGE}{ssel}) > {_num(limit)}",
        cfg.probe_missing_for,
        summary=f"{facts.client} {sla.service}: newest probe is {{{{ $value | humanizeDuration }}}} old",
        description=f"No probe for more than {_num(cfg.probe_missing_intervals)} probe intervals "
                    f"({_num(limit)}s): the time is unknown, excluded from availability.",
        extra_labels=extra, keep=("client", "service"),
        conds=(Cond((names.UPTIME_LAST_PROBE_AGE,), slabels, ">", limit),),
    ))
    ctx.add(ctx.alert(
        "SlamonProbeDataAbsent", "ticket", f"absent({names.UPTIME_LAST_PROBE_AGE}{ssel})",
        cfg.probe_missing_for,
        summary=f"{facts.client} {sla.service}: no probe data at all",
        description=f"slamon exports no probe series for {sla.service}: no probe has arrived since the worker "
                    f"started, or the probe producer is misconfigured.",
        extra_labels=extra, keep=("client", "service"),
        conds=(Cond((names.UPTIME_LAST_PROBE_AGE,), slabels, "==", kind="absent"),),
    ))


def _penalty_alerts(ctx: _Ctx, sla, sel: str) -> None:
    facts, cfg = ctx.facts, ctx.alerting
    labels = _labels(client=facts.client, sla=facts.sla)
    n = cfg.projected.uptime_min_volume if facts.source == "uptime" else cfg.projected.min_volume
    gate, gate_cond = _volume(ctx, sel, n)  # the projection's gate: exposure is a projection
    above = cfg.penalty.projected_credit_ratio_above
    fee = f"{_num(sla.penalty.monthly_fee)} {sla.penalty.currency}"
    ctx.add(ctx.alert(
        "SlamonPenaltyExposure", "ticket",
        f"{_by_sla('>', names.PENALTY_PROJECTED_CREDIT_RATIO, sel)} > {_num(above)}\nand on (client, sla)\n{gate}",
        cfg.penalty.for_,
        summary=f"{facts.client} {facts.sla}: projected service credit {{{{ $value | humanizePercentage }}}} "
                f"of the monthly fee",
        description=f"The projected end-of-period value earns a service credit under the contract's tiers "
                    f"(monthly fee {fee}; alert above {_pct(above)}). See {names.PENALTY_PROJECTED_CREDIT} "
                    f"for the amount.",
        keep=("client", "sla"),
        conds=(Cond((names.PENALTY_PROJECTED_CREDIT_RATIO,), labels, ">", above), gate_cond),
    ))
    ctx.add(ctx.alert(
        "SlamonPenaltyCreditAccrued", "info",
        f"{_by_sla('>', names.PENALTY_CREDIT_RATIO, sel)} > 0\nand on (client, sla)\n{gate}", cfg.penalty.for_,
        summary=f"{facts.client} {facts.sla}: period-to-date value earns a credit of "
                f"{{{{ $value | humanizePercentage }}}} of the monthly fee",
        description=f"As of now the period would close with a service credit (monthly fee {fee}). For the "
                    f"account manager; the projection alert says whether it is likely to stay.",
        keep=("client", "sla"),
        conds=(Cond((names.PENALTY_CREDIT_RATIO,), labels, ">", 0), gate_cond),
    ))


def _pipeline_group(contracts: Contracts, alerting: Alerting) -> Group:
    cfg = alerting.pipeline
    group = Group(name="slamon:pipeline", file="slamon-pipeline.rules.yml")

    def add(name: str, severity: str, client: str, sla: str, expr: str, for_s: int, summary: str,
            description: str, **kw) -> None:
        if name in alerting.disable:
            return
        severity = alerting.severity.get(name, severity)
        group.alerts.append(Alert(
            name=name, severity=severity, client=client, sla=sla,
            category=ALERTS[name][0], expr=expr, for_s=for_s, summary=summary, description=description,
            runbook_url=alerting.runbook(name), **conventions(alerting, client, sla, severity), **kw))

    for client in contracts.clients:
        minutes = cfg.no_events_minutes_by_client.get(client, cfg.no_events_minutes)
        sel = _sel(client=client)
        add("SlamonNoEvents", "ticket", client, "all",
            f"max by (client) ({names.EVENT_TIME_LAG}{sel}) > {_num(minutes * 60)}", cfg.no_events_for,
            summary=f"{client}: no events for {{{{ $value | humanizeDuration }}}}",
            description=f"The newest event of {client} is more than {_num(minutes)} minutes behind the worker "
                        f"clock: the producers stopped, or the client's feed is broken. Figures freeze.",
            keep=("client",),
            conds=(Cond((names.EVENT_TIME_LAG,), _labels(client=client), ">", minutes * 60),))
        add("SlamonClientDataAbsent", "ticket", client, "all", f"absent({names.SLA_INFO}{sel})",
            cfg.no_events_for,
            summary=f"{client}: no slamon series",
            description=f"No worker exports {client}'s SLAs: the client is missing from the workers' contracts, "
                        f"or the worker owning its partition is not scraped.",
            keep=("client",),
            conds=(Cond((names.SLA_INFO,), _labels(client=client), "==", kind="absent"),))
    w = prom_duration(cfg.dead_letters_window)
    add("SlamonDeadLettersRising", "ticket", "all", "pipeline",
        f"sum by (reason) (increase({names.EVENTS_REJECTED_TOTAL}[{w}])) > {cfg.dead_letters_max}", 0,
        summary=f"{{{{ $value | humanize }}}} events dead-lettered as {{{{ $labels.reason }}}} in {w}",
        description=f"More than {cfg.dead_letters_max} events were rejected in {w}. Read the dead-letter topic: "
                    f"each message names its reason and the offending line.",
        keep=("reason",),
        conds=(Cond((names.EVENTS_REJECTED_TOTAL,), _labels(partition="0", reason="malformed"), ">",
                    cfg.dead_letters_max, kind="increase", window=cfg.dead_letters_window),))
    add("SlamonConsumerLagHigh", "ticket", "all", "pipeline",
        f"sum({names.CONSUMER_LAG}) > {cfg.consumer_lag_messages}", cfg.consumer_lag_for,
        summary="slamon workers are {{ $value | humanize }} messages behind the input topic",
        description=f"More than {cfg.consumer_lag_messages} input messages are not applied yet: figures and "
                    f"alerts lag behind reality.",
        conds=(Cond((names.CONSUMER_LAG,), _labels(partition="0"), ">",
                    cfg.consumer_lag_messages),))
    add("SlamonCheckpointStale", "ticket", "all", "pipeline",
        f"max by (partition) ({names.CHECKPOINT_AGE}) > {cfg.checkpoint_age_seconds}", cfg.checkpoint_for,
        summary="partition {{ $labels.partition }}: newest snapshot is {{ $value | humanizeDuration }} old",
        description=f"No state snapshot for more than {cfg.checkpoint_age_seconds}s: a restart would replay a "
                    f"long stretch of input.",
        keep=("partition",),
        conds=(Cond((names.CHECKPOINT_AGE,), _labels(partition="0"), ">",
                    cfg.checkpoint_age_seconds),))
    job = _sel(job=cfg.job)
    add("SlamonWorkerDown", "page", "all", "pipeline", f"{names.UP}{job} == 0", cfg.worker_down_for,
        summary="slamon worker {{ $labels.instance }} is down",
        description="Prometheus cannot scrape this worker: its partitions are not processed and their series "
                    "are missing. Data-missing alerts are inhibited meanwhile.",
        keep=("job", "instance"),
        conds=(Cond((names.UP,), _labels(job=cfg.job, instance="slamon-0:9108"), "==", 0),))
    add("SlamonWorkersAbsent", "page", "all", "pipeline", f"absent({names.UP}{job})", cfg.worker_down_for,
        summary=f"no slamon worker is known to Prometheus (job {cfg.job})",
        description="No scrape target of the slamon job exists: service discovery or the deployment is broken. "
                    "Nothing is monitored.",
        keep=("job",),
        conds=(Cond((names.UP,), _labels(job=cfg.job), "==", kind="absent"),))
    return group


# --- helpers ----------------------------------------------------------------------------------------------


def _by_sla(op: str, metric: str, sel: str) -> str:
    """The SLA's gauge without the worker's labels (instance, job, pod): the worst value of the workers that
    export it (two during a rebalance), so the alert's identity is (client, sla) whichever worker owns it."""
    return f"{'min' if op in ('<', '<=') else 'max'} by (client, sla) ({metric}{sel})"


def prom_duration(seconds: float) -> str:
    s = int(seconds)
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rx(value: str) -> str:
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def _sel(**labels) -> str:
    parts = []
    for name, value in labels.items():
        op, v = value if isinstance(value, tuple) else ("=", value)
        parts.append(f"{name}{op}{_q(v)}")
    return "{" + ", ".join(parts) + "}"


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def _clean(x: float) -> float:
    return float(f"{x:.6g}")


def _num(x: float) -> str:
    x = _clean(x)
    return str(int(x)) if x == int(x) else repr(x)


def _pct(x: float) -> str:
    return f"{_clean(x * 100):g} %"


def _show(value: float, unit: str) -> str:
    return {"ratio": _pct(value), "seconds": f"{_num(value)}s", "score": _num(value)}[unit]


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def all_alerts(groups: Iterable[Group]) -> list[Alert]:
    return [a for g in groups for a in g.alerts]
