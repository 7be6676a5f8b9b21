"""Grafana dashboards as code, on grafana-foundation-sdk (Grafana's typed builders, for Grafana 11.3), rendered
to dashboard JSON (schemaVersion 39).

    slamon dashboards -o deploy/grafana/dashboards

Four dashboards. Every Prometheus panel and variable reads the datasource chosen in the `$datasource`
variable (type prometheus; the provisioned `slamon Prometheus`, uid `slamon-prometheus`, by default), so the
same JSON works against any Prometheus that scrapes the workers. The client dashboard's "Recent breaches" table
reads the SLA record (`slamon store run`) through the PostgreSQL datasource of `$store` (default `slamon-store`,
deploy/grafana/provisioning/datasources/store.yaml). docs/dashboards.md says where each number comes from.

  slamon-floor     operations-floor wallboard: one row per client (repeated over `$client`), big stat
                   panels: service level now, calls waiting, longest wait, tickets at risk, breaching soon,
                   uptime, share of SLAs on target
  slamon-client    one client's SLAs: period-to-date vs target, error-budget burn-down, projected
                   compliance, penalty exposure, breaches over time, time to budget exhaustion, calls and
                   latency, recent breaches from the SLA record (`$client`, `$sla`, `$store`)
  slamon-oncall    firing/pending alerts (ALERTS) with runbook and dashboard links, burn rates per alert tier
                   with each SLA's factor, time to budget exhaustion, what breaches next, services and data
                   freshness (`$runbooks`)
  slamon-pipeline  workers, events in/out, dead letters, consumer and event-time lag, checkpoints

Contract-independent: clients and SLAs come from template variables over `slamon_sla_info`, so the
dashboards never need regenerating when contracts change. The contract's figures come from the series the
workers export, never from numbers written here: service level and uptime are coloured against each SLA's
`slamon_sla_target_ratio`, the longest wait against the client's ASA target, burn-rate panels draw each SLA's
alert factor (alerts/windows.yaml's tiers over the SLA's period, as `alerts.rules` computes it), credits carry
the contract currency (`slamon_sla_info{currency}`) as their unit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dashboard_b
from grafana_foundation_sdk.builders import prometheus as prometheus_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from alerts.config import DEFAULT_RUNBOOK_BASE_URL, default_windows
from alerts.rules import PERIOD_SECONDS, prom_duration
from monitor import conventions as names

DATASOURCE_UID = "slamon-prometheus"  # the provisioned Prometheus: the `$datasource` variable's default
DATASOURCE_VAR = "datasource"
DS = dm.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VAR + "}")
STORE_DATASOURCE_UID = "slamon-store"  # the provisioned PostgreSQL datasource of the SLA record: `$store`'s default
STORE_VAR = "store"
STORE_TYPE = "grafana-postgresql-datasource"  # Grafana's PostgreSQL plugin id (alias: postgres)
STORE_DS = dm.DataSourceRef(type_val=STORE_TYPE, uid="${" + STORE_VAR + "}")
SCHEMA_VERSION = 39  # the SDK's default for Grafana 11.3 (docker-compose.yml runs grafana/grafana:11.3.0)
GRID_COLUMNS = 24

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"

Steps = list[tuple[float | None, str]]
PanelBuilder = stat_b.Panel | timeseries_b.Panel | table_b.Panel | bargauge_b.Panel


# --- panels and queries on grafana-foundation-sdk's builders ------------------------------------------------


# Grafana's built-in currency units (packages/grafana-data valueFormats/categories.ts); another ISO code shows as
# plain numbers, its code in the series name
CURRENCY_UNITS = {code: f"currency{code}" for code in (
    "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK", "CHF", "PLN", "ZAR", "INR",
    "KRW")}


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> prometheus_b.Dataquery:
    """A PromQL query in code mode; the panel gives it its refId (A, B, ...)."""
    q = (prometheus_b.Dataquery().datasource(DS).expr(expr).legend_format(legend).editor_mode(pm.QueryEditorMode.CODE)
         .format(pm.PromQueryFormat.TABLE if table else pm.PromQueryFormat.TIME_SERIES))
    return q.instant() if instant else q.range()


class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL query of Grafana's PostgreSQL datasource, in table format (the SDK has no builder for it)."""

    def __init__(self, sql: str, ref_id: str = "", datasource: dm.DataSourceRef = STORE_DS) -> None:
        self.sql, self.ref_id, self.datasource = sql, ref_id, datasource

    def to_json(self) -> dict:
        return {"datasource": self.datasource.to_json(), "editorMode": "code", "format": "table", "rawQuery": True,
                "rawSql": self.sql, "refId": self.ref_id}


class SqlTarget(cogbuilder.Builder[SqlQuery]):
    def __init__(self, sql: str) -> None:
        self._internal = SqlQuery(sql)

    def ref_id(self, ref_id: str) -> SqlTarget:
        self._internal.ref_id = ref_id
        return self

    def build(self) -> SqlQuery:
        return self._internal


Target = prometheus_b.Dataquery | SqlTarget


def _common(p: PanelBuilder, title: str, targets: tuple[Target, ...], *, w: int, h: int,
            color: dm.FieldColorModeId, unit: str | None = None, decimals: int | None = None,
            thresholds: Steps | None = None, min: float | None = None, max: float | None = None,
            description: str = "", mappings: list[dm.ValueMapping] | None = None,
            colors: tuple[str, ...] = (), currency: bool = False,
            links: dict[str, list[dict]] | None = None) -> PanelBuilder:
    """`colors`: a fixed colour per query (A, B, ...) instead of the thresholds' (a query per band, when the
    band's bounds come from series); `currency`: credit units from the display name's `(EUR)`;
    `links`: per column name, data links shown on its cells."""
    sql = any(isinstance(t, SqlTarget) for t in targets)
    p.title(title).description(description).datasource(STORE_DS if sql else DS).span(w).height(h)
    for i, t in enumerate(targets):
        p.with_target(t.ref_id(chr(ord("A") + i)))
    for i, c in enumerate(colors):
        p.override_by_query(chr(ord("A") + i), [dm.DynamicConfigValue(
            id_val="color", value={"mode": "fixed", "fixedColor": c})])
    if currency:
        for code, currency_unit in CURRENCY_UNITS.items():
            p.override_by_regexp(rf"/\({code}\)$/", [dm.DynamicConfigValue(id_val="unit", value=currency_unit)])
    for column, column_links in (links or {}).items():
        p.override_by_name(column, [dm.DynamicConfigValue(id_val="links", value=column_links)])
    p.color_scheme(dashboard_b.FieldColor().mode(color)).mappings(mappings or [])
    p.thresholds(dashboard_b.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in thresholds or [(None, GREEN)]]))
    if unit:
        p.unit(unit)
    if decimals is not None:
        p.decimals(decimals)
    if min is not None:
        p.min(min)
    if max is not None:
        p.max(max)
    return p


def _last_value() -> common_b.ReduceDataOptions:
    return common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def stat(title: str, *targets: prometheus_b.Dataquery, **kw) -> stat_b.Panel:
    """A big-value panel coloured (background) by its thresholds."""
    p = _common(stat_b.Panel(), title, targets, color=dm.FieldColorModeId.THRESHOLDS, **kw)
    return (p.reduce_options(_last_value()).color_mode(cm.BigValueColorMode.BACKGROUND)
            .graph_mode(cm.BigValueGraphMode.NONE).justify_mode(cm.BigValueJustifyMode.AUTO)
            .orientation(cm.VizOrientation.AUTO).text_mode(cm.BigValueTextMode.VALUE_AND_NAME).wide_layout(True)
            .show_percent_change(False))


def big(panel: stat_b.Panel) -> stat_b.Panel:
    """Wallboard sizes: readable from across the room."""
    return panel.text(common_b.VizTextDisplayOptions().title_size(18).value_size(44))


def series(title: str, *targets: prometheus_b.Dataquery, threshold_line: bool = False, bars: bool = False,
           dashed: str | None = None, **kw) -> timeseries_b.Panel:
    """A time series with a table legend on the right; `threshold_line` draws the thresholds, `bars` draws
    bars, `dashed` is a regex of series names drawn dashed (targets next to their series)."""
    p = _common(timeseries_b.Panel(), title, targets, color=dm.FieldColorModeId.PALETTE_CLASSIC, **kw)
    p.legend(common_b.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
             .placement(cm.LegendPlacement.RIGHT).show_legend(True).calcs(["lastNotNull"]))
    p.tooltip(common_b.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    if threshold_line:
        p.thresholds_style(common_b.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE))
    if bars:
        p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
    if dashed:
        p.override_by_regexp(dashed, [dm.DynamicConfigValue(
            id_val="custom.lineStyle", value=cm.LineStyle(fill="dash", dash=[10, 10]))])
    return p


def table(title: str, *targets: prometheus_b.Dataquery, transformations: list[dm.DataTransformerConfig],
          **kw) -> table_b.Panel:
    p = _common(table_b.Panel(), title, targets, color=dm.FieldColorModeId.PALETTE_CLASSIC, **kw)
    return (p.show_header(True).cell_height(cm.TableCellHeight.SM).footer(common_b.TableFooterOptions().show(False))
            .transformations(transformations))


def bar_gauge(title: str, *targets: prometheus_b.Dataquery, **kw) -> bargauge_b.Panel:
    p = _common(bargauge_b.Panel(), title, targets, color=dm.FieldColorModeId.THRESHOLDS, **kw)
    return (p.reduce_options(_last_value()).orientation(cm.VizOrientation.HORIZONTAL)
            .display_mode(cm.BarGaugeDisplayMode.GRADIENT).show_unfilled(True).value_mode(cm.BarGaugeValueMode.COLOR))


def transform(id_: str, **options) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val=id_, options=options)


def count_steps(orange: float, red: float) -> Steps:
    return [(None, GREEN), (orange, ORANGE), (red, RED)]


# --- variables ----------------------------------------------------------------------------------------------


def query_variable(name: str, label: str, query: str, *, multi: bool = True,
                   include_all: bool = True) -> dashboard_b.QueryVariable:
    """A Prometheus query variable (label_values); with "All" meaning the regex `.+`."""
    v = (dashboard_b.QueryVariable(name).label(label).hide(dm.VariableHide.DONT_HIDE).datasource(DS)
         .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC).regex("")
         .options([]).multi(multi).include_all(include_all))
    if include_all:
        v.all_value(".+").current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return v


def datasource_variable() -> dashboard_b.DatasourceVariable:
    """`$datasource`: which Prometheus the panels read; the provisioned one by default."""
    return (dashboard_b.DatasourceVariable(DATASOURCE_VAR).label("Prometheus").type("prometheus")
            .hide(dm.VariableHide.DONT_HIDE).regex("").multi(False).include_all(False)
            .current(dm.VariableOption(selected=True, text="slamon Prometheus", value=DATASOURCE_UID)))


def store_variable() -> dashboard_b.DatasourceVariable:
    """`$store`: the PostgreSQL datasource of the SLA record (the provisioned `slamon-store` by default)."""
    return (dashboard_b.DatasourceVariable(STORE_VAR).label("SLA record").type(STORE_TYPE)
            .hide(dm.VariableHide.DONT_HIDE).regex("").multi(False).include_all(False)
            .current(dm.VariableOption(selected=True, text="slamon SLA record", value=STORE_DATASOURCE_UID)))


def textbox_variable(name: str, label: str, default: str, description: str = "") -> dashboard_b.TextBoxVariable:
    option = dm.VariableOption(selected=True, text=default, value=default)
    return (dashboard_b.TextBoxVariable(name).label(label).description(description)
            .hide(dm.VariableHide.DONT_HIDE).default_value(default).current(option).options([option]))


def custom_variable(name: str, label: str, *values: str) -> dashboard_b.CustomVariable:
    """A single-choice variable over fixed values, the first selected."""
    options = [dm.VariableOption(selected=i == 0, text=v, value=v) for i, v in enumerate(values)]
    return (dashboard_b.CustomVariable(name).label(label).hide(dm.VariableHide.DONT_HIDE).values(",".join(values))
            .multi(False).include_all(False).options(options)
            .current(dm.VariableOption(selected=True, text=values[0], value=values[0])))


# --- dashboards: rows laid out on the 24-column grid --------------------------------------------------------


class Row(NamedTuple):
    title: str
    panels: list[PanelBuilder]
    repeat: str | None = None


@dataclass(frozen=True)
class GeneratedDashboard:
    """A built dashboard (the SDK's model) and its JSON as plain dicts and lists."""

    model: dm.Dashboard

    @property
    def uid(self) -> str:
        return self.model.uid or ""

    def to_json(self) -> dict:
        return json.loads(json.dumps(self.model, cls=JSONEncoder))


Variable = (dashboard_b.QueryVariable | dashboard_b.CustomVariable | dashboard_b.DatasourceVariable
            | dashboard_b.TextBoxVariable)


def build(uid: str, title: str, description: str, rows: list[Row], variables: list[Variable], *, refresh: str,
          time_from: str) -> GeneratedDashboard:
    """The dashboard with every panel placed: rows expanded, panels left to right, wrapping to a new line
    when the next one does not fit; panel ids 1, 2, ... in that order. `$datasource` comes first."""
    d = (dashboard_b.Dashboard(title).uid(uid).description(description).tags(["slamon"]).version(1).editable()
         .tooltip(dm.DashboardCursorSync.CROSSHAIR).timezone("browser").refresh(refresh).time(time_from, "now")
         .fiscal_year_start_month(0).live_now(False).week_start("")
         .annotation(dashboard_b.AnnotationQuery().built_in(1).name("Annotations & Alerts").type("dashboard")
                     .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --")).enable(True)
                     .hide(True).icon_color("rgba(0, 211, 255, 1)"))
         .link(dashboard_b.DashboardLink("slamon").type(dm.DashboardLinkType.DASHBOARDS).tags(["slamon"])
               .as_dropdown(True).include_vars(True).keep_time(True))
         .variables([datasource_variable(), *variables]))
    next_id, y = 1, 0
    for row in rows:
        r = dashboard_b.Row(row.title).id(next_id).collapsed(False).grid_pos(
            dm.GridPos(x=0, y=y, w=GRID_COLUMNS, h=1))
        d.with_row(r.repeat(row.repeat) if row.repeat else r)
        next_id, y = next_id + 1, y + 1
        x, line_h = 0, 0
        for panel in row.panels:
            size = panel.build().grid_pos  # w and h from span() / height(); the SDK refuses w > 24
            if x + size.w > GRID_COLUMNS:
                x, y, line_h = 0, y + line_h, 0
            d.with_panel(panel.id(next_id).grid_pos(dm.GridPos(x=x, y=y, w=size.w, h=size.h)))
            next_id, x, line_h = next_id + 1, x + size.w, max(line_h, size.h)
        y += line_h
    return GeneratedDashboard(d.build())


# --- the four dashboards ------------------------------------------------------------------------------------


C = f'{names.CLIENT}=~"$client"'
CS = f'{C}, {names.SLA}=~"$sla"'
J = f'{names.JOB}="$job"'
UP_DOWN = [dm.ValueMap(options={"1": dm.ValueMappingResult(text="UP", color=GREEN, index=0),
                                "0": dm.ValueMappingResult(text="DOWN", color=RED, index=1)})]


def client_variable(**kw) -> dashboard_b.QueryVariable:
    return query_variable("client", "Client", f"label_values({names.SLA_INFO}, {names.CLIENT})", **kw)


def job_variable() -> dashboard_b.CustomVariable:
    return custom_variable("job", "Job", names.WORKER_JOB)


def by_sla(selector: str) -> str:
    """One series per (client, sla): two workers export an SLA for a moment during a partition handover."""
    return f"max by ({names.CLIENT}, {names.SLA}) ({selector})"


ON_SLA = f"on ({names.CLIENT}, {names.SLA}) group_left ()"
ON_CLIENT = f"on ({names.CLIENT})"


def target_bands(value: str, target_ratio: str, legend: str) -> tuple[prometheus_b.Dataquery, ...]:
    """`value` (series with client and sla labels, higher is better) split by the SLA's exported target, a query
    per colour (`colors=BANDS`): below target - half the allowed error ratio (red), below the target (orange), at
    or above it (green). For an 80 % target: red below 70 %, orange 70-80 %; 99.9 %: red below 99.85 %."""
    t = by_sla(target_ratio)
    low = f"(1.5 * {t} - 0.5)"
    return (target(f"{value} < {ON_SLA} {low}", legend),
            target(f"({value} >= {ON_SLA} {low}) < {ON_SLA} {t}", legend),
            target(f"{value} >= {ON_SLA} {t}", legend))


BANDS = (RED, ORANGE, GREEN)


def period_seconds(sel: str) -> str:
    """Each SLA's period in seconds as the rule generator counts it (alerts.rules.PERIOD_SECONDS: a month is 30
    days), from `slamon_sla_info{period}`; a rolling period from the exported period start and end."""
    fixed = []
    for name, seconds in PERIOD_SECONDS.items():
        info = f'{names.SLA_INFO}{{{sel}, {names.PERIOD}="{name}"}}'
        fixed.append(f"({by_sla(info)} * {seconds})")
    rolling = by_sla(f"{names.SLA_PERIOD_END}{{{sel}}} - {names.SLA_PERIOD_START}{{{sel}}}")
    return "(" + " or ".join([*fixed, f"({rolling})"]) + ")"


def burn_factor(tier, sel: str) -> str:
    """The tier's burn-rate factor per SLA, as the generated rules record it (`client_sla:slamon_sla_burn_factor:
    tier`, one constant series per SLA and tier the rules alert on): per-SLA overrides of the alerting config
    (another budget share, a tier switched off) show as the alert sees them; no series where the rules drop the
    tier (long window longer than the period, factor x allowed error ratio >= 1, no ratio budget)."""
    return by_sla(f'{names.REC_BURN_FACTOR}{{{sel}, {names.TIER}="{tier.name}"}}')


def exhaustion_pace():
    """The window whose burn rate estimates the time to exhaustion: the longest page tier's long window."""
    tiers = default_windows().tiers
    return max((t for t in tiers if t.severity == "page"), key=lambda t: t.long_window, default=tiers[0])


def time_to_exhaustion(sel: str) -> str:
    """Seconds until the error budget is spent at the pace of the last `exhaustion_pace()` window: budget left x
    period / burn rate (burn 1 spends the budget in exactly one period; volume assumed even over the period).
    0 when already spent (whatever the pace); no series while an unspent budget is not being spent (burn 0)."""
    window = prom_duration(exhaustion_pace().long_window)
    burn = by_sla(f"{names.recorded_burn_rate(window)}{{{sel}}}")
    left = by_sla(f"{names.SLA_ERROR_BUDGET_REMAINING}{{{sel}}}")
    return f"(clamp_min({left}, 0) * {period_seconds(sel)} / ({burn} > 0)) or (({left} <= 0) * 0)"


def exhaustion_steps() -> Steps:
    """red within the horizon of a page tier (budget_share of the budget in the long window: gone in
    long_window / budget_share), orange within a ticket tier's, green beyond."""
    tiers = default_windows().tiers
    horizon = {sev: max((t.long_window / t.budget_share for t in tiers if t.severity == sev), default=0)
               for sev in ("page", "ticket")}
    return [(None, RED), (round(horizon["page"]), ORANGE), (round(max(horizon.values())), GREEN)]


def credit(metric: str, sel: str, by: str) -> str:
    """A penalty series summed `by` with the contract currency as a label (legend `... ({{currency}})`: its
    unit, see CURRENCY_UNITS)."""
    info = f"max by ({names.CLIENT}, {names.SLA}, {names.CURRENCY}) ({names.SLA_INFO}{{{sel}}})"
    return (f"sum by ({by}, {names.CURRENCY}) ({metric}{{{sel}}} "
            f"* on ({names.CLIENT}, {names.SLA}) group_left ({names.CURRENCY}) {info})")


def floor() -> GeneratedDashboard:
    """Operations-floor wallboard: a row per client, readable from across the room. Colours follow each SLA's
    own target (the band queries of `target_bands`), not numbers fixed here."""
    asa = by_sla(f'{names.SLA_INFO}{{{C}, {names.KIND}="asa"}}')
    asa_target = f"max by ({names.CLIENT}) ({names.SLA_TARGET_SECONDS}{{{C}}} * {ON_SLA} {asa})"
    longest = f"max by ({names.CLIENT}) ({names.CALLS_LONGEST_WAIT}{{{C}}})"
    on_target = f"avg by ({names.CLIENT}) ({by_sla(f'{names.SLA_MET}{{{C}}}')})"
    credit_due = f"(max by ({names.CLIENT}) ({names.PENALTY_PROJECTED_CREDIT}{{{C}}}) > 0)"
    row = Row("$client", repeat="client", panels=[
        big(stat("Service level (30 min)",
                 *target_bands(f'{names.SERVICE_LEVEL_WINDOW}{{{C}, {names.WINDOW}="30m"}}',
                               f"{names.SLA_TARGET_RATIO}{{{C}}}", "{{sla}}"),
                 colors=BANDS, unit="percentunit", decimals=1, w=6, h=6,
                 description="Answered within the SLA's threshold over the last 30 minutes, per service-level SLA. "
                             "Green: at or above the SLA's target; orange: below it by less than half the allowed "
                             "miss (80 % target: 70-80 %); red: further below")),
        big(stat("Calls waiting", target(f"sum by (client) ({names.CALLS_WAITING}{{{C}}})", "waiting"),
                 thresholds=count_steps(5, 10), decimals=0, w=3, h=6)),
        big(stat("Longest wait",
                 target(f"{longest} >= {ON_CLIENT} (2 * {asa_target})", "longest"),
                 target(f"({longest} >= {ON_CLIENT} {asa_target}) < {ON_CLIENT} (2 * {asa_target})", "longest"),
                 target(f"{longest} < {ON_CLIENT} {asa_target}", "longest"),
                 target(f"{longest} unless {ON_CLIENT} {asa_target}", "longest"),
                 colors=(*BANDS, BLUE), unit="s", decimals=0, w=3, h=6,
                 description="The oldest waiting call. Against the client's ASA target: orange from the target, "
                             "red from twice it; blue when the contract has no ASA SLA")),
        big(stat("Breaching within 30 min",
                 target(f'sum by (client) ({names.SLA_BREACHING_SOON_ITEMS}{{{C}, {names.WITHIN}="30m"}})', "items"),
                 decimals=0, thresholds=count_steps(1, 5), w=4, h=6,
                 description="Open tickets whose deadline falls within 30 minutes")),
        big(stat("Tickets past a warning stage",
                 target(f"sum by (client, sla) ({names.SLA_AT_RISK_ITEMS}{{{C}}})", "{{sla}}"),
                 decimals=0, thresholds=count_steps(5, 20), w=8, h=6,
                 description="Open tickets whose elapsed time reached one of the SLA's warning stages")),
        big(stat("Uptime (period)",
                 *target_bands(f"{names.UPTIME_AVAILABILITY}{{{C}}}", f"{names.SLA_TARGET_RATIO}{{{C}}}",
                               "{{service}}"),
                 colors=BANDS, unit="percentunit", decimals=3, w=8, h=5,
                 description="Availability this period against the uptime SLA's target (green: met; orange: "
                             "missed by less than half the allowed downtime; red: further)")),
        big(stat("SLAs on target",
                 target(f"{on_target} and {ON_CLIENT} {credit_due}", "on target"),
                 target(f"({on_target} < 1) unless {ON_CLIENT} {credit_due}", "on target"),
                 target(f"({on_target} >= 1) unless {ON_CLIENT} {credit_due}", "on target"),
                 colors=BANDS, unit="percentunit", decimals=0, w=4, h=5,
                 description="Share of the client's SLAs whose period-to-date value meets its target. Green: all "
                             "of them; orange: some miss, no service credit projected; red: the contract's "
                             "penalty tiers project a credit")),
        big(stat("Open tickets", target(f"sum by (client) ({names.SLA_OPEN_ITEMS}{{{C}}})", "open"),
                 decimals=0, thresholds=[(None, BLUE)], w=4, h=5)),
        big(stat("Projected credit", target(credit(names.PENALTY_PROJECTED_CREDIT, C, names.CLIENT),
                                            "projected ({{currency}})"),
                 decimals=0, thresholds=count_steps(1, 1000), currency=True, w=8, h=5,
                 description="Service credit the projected end-of-period values would earn, in the contract's "
                             "currency")),
    ])
    return build("slamon-floor", "slamon / Operations floor",
                 "Wallboard: service level, queues and tickets at risk per client, live", [row],
                 [client_variable()], refresh="10s", time_from="now-3h")


def client_page() -> GeneratedDashboard:
    sla_var = query_variable("sla", "SLA", f"label_values({names.SLA_INFO}{{{C}}}, {names.SLA})")
    client = client_variable(multi=False, include_all=False)
    slas = table("SLAs this period",
                 target(f"{names.SLA_COMPLIANCE_RATIO}{{{CS}}}", instant=True, table=True),
                 target(f"{names.SLA_TARGET_RATIO}{{{CS}}}", instant=True, table=True),
                 target(f"{names.SLA_PROJECTED_RATIO}{{{CS}}}", instant=True, table=True),
                 target(f"{names.SLA_ERROR_BUDGET_REMAINING}{{{CS}}}", instant=True, table=True),
                 w=16, h=9, unit="percentunit", decimals=2, transformations=[
                     transform("merge"),
                     transform("organize", excludeByName={"Time": True, "__name__": True, "instance": True,
                                                          "job": True},
                               renameByName={"Value #A": "Period to date", "Value #B": "Target",
                                             "Value #C": "Projected", "Value #D": "Error budget left"})],
                 description="Ratio SLAs (tickets: the objective); asa/aht below")
    return build("slamon-client", "slamon / Client SLAs",
                 "One client's SLAs: period to date vs target, budget, projection, penalties", [
        Row("Period to date", [
            slas,
            big(stat("Projected credit", target(credit(names.PENALTY_PROJECTED_CREDIT, CS, names.SLA),
                                                "{{sla}} ({{currency}})"),
                     decimals=0, thresholds=count_steps(1, 1000), currency=True, w=4, h=9,
                     description="Penalty exposure: credit the projected end-of-period value earns, in the "
                                 "contract's currency")),
            big(stat("Credit earned so far", target(credit(names.PENALTY_CREDIT, CS, names.SLA),
                                                    "{{sla}} ({{currency}})"),
                     decimals=0, thresholds=count_steps(1, 1000), currency=True, w=4, h=9)),
        ]),
        Row("Over time", [
            series("Compliance vs target",
                   target(f"{names.SLA_COMPLIANCE_RATIO}{{{CS}}}", "{{sla}}"),
                   target(f"{names.SLA_TARGET_RATIO}{{{CS}}}", "{{sla}} target"),
                   unit="percentunit", w=12, h=8,
                   dashed="/ target$/"),
            series("Error budget remaining (burn-down)",
                   target(f"{names.SLA_ERROR_BUDGET_REMAINING}{{{CS}}}", "{{sla}}"),
                   unit="percentunit", w=12, h=8, thresholds=[(None, RED), (0, GREEN)],
                   threshold_line=True,
                   description="1 - bad / allowed bad, current period; below 0 the period misses its target"),
            series("Projected end-of-period value",
                   target(f"{names.SLA_PROJECTED_RATIO}{{{CS}}}", "{{sla}}"),
                   target(f"{names.SLA_TARGET_RATIO}{{{CS}}}", "{{sla}} target"),
                   unit="percentunit", w=12, h=8, dashed="/ target$/"),
            series("Bad decisions over time (breaches, abandons, errors)",
                   target(f"sum by (sla) (increase({names.SLA_BAD_TOTAL}{{{CS}}}[$__rate_interval]))", "{{sla}}"),
                   target(f"sum by (sla) (increase({names.UPTIME_DOWNTIME_SECONDS}{{{CS}}}[$__rate_interval]))",
                          "{{sla}} downtime (s)"),
                   w=12, h=8, bars=True),
            series("Burn rate (engine: 1h, 6h, 24h)",
                   target(f"{names.SLA_BURN_RATE}{{{CS}}}", "{{sla}} {{window}}"), w=12, h=8,
                   thresholds=[(None, GREEN), (1, RED)], threshold_line=True),
            series("Projected credit over time",
                   target(credit(names.PENALTY_PROJECTED_CREDIT, CS, names.SLA), "{{sla}} ({{currency}})"),
                   currency=True, w=12, h=8),
            exhaustion_gauge(CS, "{{sla}}", w=12, h=8),
            stat("Days left in the period", target(
                f"({by_sla(f'{names.SLA_PERIOD_END}{{{CS}}}')} - time()) / 86400 "
                f'unless on ({names.CLIENT}, {names.SLA}) {names.SLA_INFO}{{{CS}, {names.PERIOD}=~"rolling.*"}}',
                "{{sla}}", instant=True),
                decimals=1, thresholds=[(None, BLUE)], w=12, h=8,
                description="Until the current calendar period ends (compare with the time to budget exhaustion); "
                            "rolling periods never end"),
        ]),
        Row("Recent breaches (SLA record)", [recent_breaches()]),
        Row("Calls and handling times", [
            series("Service level (rolling windows)",
                   target(f"{names.SERVICE_LEVEL_WINDOW}{{{CS}}}", "{{sla}} {{window}}"),
                   unit="percentunit", w=8, h=8),
            series("ASA / AHT (period) and ASA (30 min)",
                   target(f"{names.SLA_VALUE_SECONDS}{{{CS}}}", "{{sla}} period"),
                   target(f'{names.ASA_WINDOW}{{{CS}, {names.WINDOW}="30m"}}', "{{sla}} 30 min"),
                   unit="s", w=8, h=8),
            series("Response / wait / handle time quantiles",
                   target(f"{names.SLA_LATENCY}{{{CS}}}", "{{sla}} q{{quantile}}"), unit="s", w=8, h=8),
            series("Open tickets by priority",
                   target(f"sum by (sla, priority) ({names.SLA_OPEN_ITEMS}{{{CS}}})", "{{sla}} {{priority}}"),
                   w=12, h=8),
            series("Calls waiting by queue",
                   target(f"sum by (queue) ({names.CALLS_WAITING}{{{C}}})", "{{queue}}"), w=12, h=8),
        ]),
    ], [client, sla_var, store_variable()], refresh="1m", time_from="now-7d")


# The "Recent breaches" table's SQL, on the SLA record's schema (store/db.py, docs/sla-record.md). Grafana fills
# in: $__unixEpochFrom() / $__unixEpochTo() (the time range, Unix seconds), ${client:sqlstring} (the client as a
# quoted SQL string), ${sla:regex} (the chosen SLAs as a regex; All: `.+`). `bad > 0` uses the partial index
# sla_decisions_breaches; `::bigint` because seconds x 10^6 overflows PostgreSQL's integer.
# tests/integration/test_dashboard_breaches_pg.py runs it on PostgreSQL.
BREACHES_LIMIT = 100
RECENT_BREACHES_SQL = f"""SELECT
  to_timestamp(at_us / 1e6) AS "Decided at",
  sla AS "SLA",
  COALESCE(item, item_key) AS "Item",
  priority AS "Priority",
  queue AS "Queue",
  to_timestamp(deadline_us / 1e6) AS "Deadline",
  elapsed_s AS "Elapsed",
  target_s AS "Target",
  elapsed_s - target_s AS "Over by",
  trigger AS "Decided by",
  period AS "Period"
FROM sla_decisions
WHERE bad > 0
  AND client = ${{client:sqlstring}}
  AND sla ~ '^(${{sla:regex}})$'
  AND at_us >= $__unixEpochFrom()::bigint * 1000000 AND at_us < $__unixEpochTo()::bigint * 1000000
ORDER BY at_us DESC, sla, item_key
LIMIT {BREACHES_LIMIT}"""


def recent_breaches() -> table_b.Panel:
    p = table("Recent breaches", SqlTarget(RECENT_BREACHES_SQL), w=24, h=10, transformations=[],
              description=f"From the SLA record (`slamon store run` on PostgreSQL): the newest {BREACHES_LIMIT} "
                          "decisions in force counted bad in the time range (tickets past their deadline, calls "
                          "answered late or abandoned, bad surveys/audits); withdrawn decisions are not shown. "
                          "Needs the `slamon-store` datasource (deploy/grafana/provisioning/datasources)")
    for column in ("Elapsed", "Target", "Over by"):
        p.override_by_name(column, [dm.DynamicConfigValue(id_val="unit", value="s")])
    return p


def exhaustion_gauge(sel: str, legend: str, *, w: int, h: int) -> bargauge_b.Panel:
    window = prom_duration(exhaustion_pace().long_window)
    return bar_gauge("Time to budget exhaustion, soonest 10",
                     target(f"bottomk(10, {time_to_exhaustion(sel)})", legend, instant=True),
                     unit="s", decimals=1, thresholds=exhaustion_steps(), w=w, h=h,
                     description=f"Error budget left x period / burn rate over the last {window}: when the budget "
                                 "is gone at that pace (0: already spent; absent: nothing spent lately). Red "
                                 "within a page tier's horizon, orange within a ticket tier's (alerts/windows.yaml)")


def burn_tier_panel(tier) -> timeseries_b.Panel:
    """A burn-rate tier as the alert sees it: both windows' recorded burn rates and each SLA's factor (dashed);
    the alert fires when both lines stay above the factor (and the long window had enough volume)."""
    lw, sw = prom_duration(tier.long_window), prom_duration(tier.short_window)
    return series(f"{tier.name} ({tier.severity}): burn {lw} and {sw} vs factor",
                  target(f"{names.recorded_burn_rate(lw)}{{{C}}}", f"{{{{client}}}} {{{{sla}}}} {lw}"),
                  target(f"{names.recorded_burn_rate(sw)}{{{C}}}", f"{{{{client}}}} {{{{sla}}}} {sw}"),
                  target(burn_factor(tier, C), "{{client}} {{sla}} factor"),
                  dashed="/ factor$/", w=12, h=8,
                  description=f"{tier.budget_share:.0%} of the period's budget in {lw}: factor = "
                              f"{tier.budget_share:g} x period / {lw} (at least {default_windows().min_factor:g}); "
                              "as the rules record it per SLA (overrides included); no factor line where the "
                              "rules drop the tier")


RUNBOOK_VAR = "runbooks"


def alert_links() -> dict[str, list[dict]]:
    """Data links on the alert table: the alert's runbook (as the rules' runbook_url: <base>/<alertname>.md,
    base in `$runbooks`) and the dashboards the rules' dashboard_url points to."""
    f = "${__data.fields.%s}"
    return {
        "alertname": [{"title": "Runbook", "url": f"${{{RUNBOOK_VAR}}}/{f % 'alertname'}.md", "targetBlank": True}],
        "sla": [{"title": "Client SLA dashboard",
                 "url": f"/d/slamon-client?var-client={f % 'client'}&var-sla={f % 'sla'}&${{__url_time_range}}"},
                {"title": "Pipeline dashboard", "url": "/d/slamon-pipeline?${__url_time_range}"}],
    }


def oncall() -> GeneratedDashboard:
    runbooks = textbox_variable(RUNBOOK_VAR, "Runbooks", DEFAULT_RUNBOOK_BASE_URL,
                                "Where the runbooks are served: the alerting config's runbook_base_url")
    return build("slamon-oncall", "slamon / On-call",
                 "Burn rates, firing alerts and what breaches next", [
        Row("Alerts", [
            table("Alerts firing and pending", target(
                'sum by (alertname, severity, client, sla, alertstate) '
                '(ALERTS{alertname=~"Slamon.+", client=~"$client|all"})', instant=True, table=True),
                w=24, h=8, transformations=[transform("organize", excludeByName={"Time": True, "Value": True})],
                links=alert_links(),
                description="From Prometheus' ALERTS series: pending alerts are about to fire. The alert name "
                            "links to its runbook (base URL: the Runbooks variable), the SLA to its dashboard"),
        ]),
        Row("Burn rates (alert tiers, alerts/windows.yaml)", [burn_tier_panel(t) for t in default_windows().tiers]),
        Row("Budget and deadlines", [
            exhaustion_gauge(C, "{{client}} {{sla}}", w=12, h=8),
            stat("Breaching within 30 min",
                 target(f'sum by (client, sla) ({names.SLA_BREACHING_SOON_ITEMS}{{{C}, {names.WITHIN}="30m"}})',
                        "{{client}} {{sla}}"), decimals=0, thresholds=count_steps(1, 5), w=6, h=8),
            stat("Next deadline", target(f"min by (client, sla) ({names.SLA_NEXT_DEADLINE}{{{C}}})",
                                         "{{client}} {{sla}}"),
                 unit="s", thresholds=[(None, RED), (900, ORANGE), (1800, GREEN)], w=6, h=8),
            series("Burn rate 24h (engine, event time)",
                   target(f'{names.SLA_BURN_RATE}{{{C}, {names.WINDOW}="24h"}}', "{{client}} {{sla}}"), w=12, h=8,
                   thresholds=[(None, GREEN), (1, RED)], threshold_line=True),
            bar_gauge("Error budget left, lowest 10", target(
                f"bottomk(10, {names.SLA_ERROR_BUDGET_REMAINING}{{{C}}})", "{{client}} {{sla}}",
                instant=True), unit="percentunit", min=-1, max=1, w=12, h=8,
                thresholds=[(None, RED), (0, ORANGE), (0.25, GREEN)]),
        ]),
        Row("Services and data", [
            stat("Services", target(f"{names.UPTIME_SERVICE_UP}{{{C}}}", "{{client}} {{service}}"),
                 mappings=UP_DOWN, thresholds=[(None, RED), (1, GREEN)], w=8, h=5),
            stat("Newest probe age", target(f"{names.UPTIME_LAST_PROBE_AGE}{{{C}}}",
                                            "{{client}} {{service}}"),
                 unit="s", thresholds=count_steps(120, 300), w=8, h=5),
            stat("Event-time lag", target(f"max by (client) ({names.EVENT_TIME_LAG}{{{C}}})", "{{client}}"),
                 unit="s", thresholds=count_steps(600, 1800), w=8, h=5),
        ]),
    ], [client_variable(), job_variable(), runbooks], refresh="30s", time_from="now-12h")


def pipeline() -> GeneratedDashboard:
    return build("slamon-pipeline", "slamon / Pipeline health",
                 "Workers, events, dead letters, lag and checkpoints", [
        Row("Workers", [
            stat("Workers up", target(f"sum({names.UP}{{{J}}})", "up"), thresholds=[(None, RED), (1, GREEN)], w=4, h=5),
            stat("Workers down", target(f"count({names.UP}{{{J}}} == 0) or vector(0)", "down"),
                 thresholds=count_steps(1, 1), w=4, h=5),
            stat("Consumer lag", target(f"sum({names.CONSUMER_LAG}{{{J}}})", "messages"),
                 thresholds=count_steps(1000, 10000), w=4, h=5),
            stat("Dead letters (1h)", target(f"sum(increase({names.EVENTS_REJECTED_TOTAL}{{{J}}}[1h]))", "events"),
                 decimals=0, thresholds=count_steps(1, 20), w=4, h=5),
            stat("Scrape duration", target(f"max({names.SCRAPE_DURATION}{{{J}}})", "max"), unit="s",
                 thresholds=count_steps(1, 5), w=4, h=5),
            stat("Orphaned events held", target(f"sum({names.EVENTS_ORPHANED}{{{J}}})", "held"),
                 thresholds=count_steps(100, 1000), w=4, h=5),
        ]),
        Row("Events", [
            series("Events accepted / s by kind",
                   target(f"sum by (kind) (rate({names.EVENTS_TOTAL}{{{J}}}[$__rate_interval]))", "{{kind}}"),
                   unit="reqps", w=12, h=8),
            series("Input messages / s by partition",
                   target(f"sum by (partition) (rate({names.EVENTS_RECEIVED_TOTAL}{{{J}}}[$__rate_interval]))",
                          "p{{partition}}"), unit="reqps", w=12, h=8),
            series("Dead letters by reason",
                   target(f"sum by (reason) (increase({names.EVENTS_REJECTED_TOTAL}{{{J}}}[$__rate_interval]))",
                          "{{reason}}"), w=12, h=8, bars=True),
            series("Duplicates, misrouted, SLA events / s",
                   target(f"sum(rate({names.EVENTS_DUPLICATE_TOTAL}{{{J}}}[$__rate_interval]))", "duplicates"),
                   target(f"sum(rate({names.EVENTS_MISROUTED_TOTAL}{{{J}}}[$__rate_interval]))", "misrouted"),
                   target(f"sum(rate({names.SLA_EVENTS_TOTAL}{{{J}}}[$__rate_interval]))", "SLA events"),
                   unit="reqps", w=12, h=8),
        ]),
        Row("Lag and state", [
            series("Consumer lag by partition",
                   target(f"sum by (partition) ({names.CONSUMER_LAG}{{{J}}})", "p{{partition}}"),
                   w=8, h=8),
            series("Event-time lag by client",
                   target(f"max by (client) ({names.EVENT_TIME_LAG}{{{J}}})", "{{client}}"), unit="s",
                   w=8, h=8),
            series("Checkpoint age",
                   target(f"max by (partition) ({names.CHECKPOINT_AGE}{{{J}}})", "p{{partition}}"),
                   unit="s", w=8, h=8),
            series("Checkpoint size",
                   target(f"sum by (partition) ({names.CHECKPOINT_SIZE}{{{J}}})", "p{{partition}}"),
                   unit="bytes", w=8, h=8),
            series("Outputs not yet confirmed",
                   target(f"sum by (partition) ({names.OUTBOX_UNCONFIRMED}{{{J}}})", "p{{partition}}"), w=8, h=8),
            series("Input offset vs checkpoint offset",
                   target(f"max by (partition) ({names.INPUT_OFFSET}{{{J}}})", "p{{partition}} input"),
                   target(f"max by (partition) ({names.CHECKPOINT_OFFSET}{{{J}}})", "p{{partition}} checkpoint"),
                   w=8, h=8),
        ]),
    ], [job_variable()], refresh="30s", time_from="now-6h")


def dashboards() -> list[GeneratedDashboard]:
    return [floor(), client_page(), oncall(), pipeline()]


def write_dashboards(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for d in dashboards():
        path = directory / f"{d.uid}.json"
        path.write_text(json.dumps(d.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        out.append(path)
    return out


# --- model check (used by the tests and `slamon dashboards`) ----------------------------------------------

BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms", "__from", "__to",
                "__all", "__name", "__unixEpochFrom", "__unixEpochTo", "__url_time_range"}
_VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in _VAR.findall(text)}


def all_panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def prometheus_targets(panel: dict) -> list[dict]:
    """The panel's PromQL targets (not the SLA record's SQL)."""
    return [t for t in panel.get("targets", []) if (t.get("datasource") or {}).get("type") == "prometheus"]


def check_dashboard(d: dict) -> list[str]:
    """Problems with a dashboard JSON (empty: fine)."""
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "refresh"):
        if key not in d:
            problems.append(f"missing key {key!r}")
    if d.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion {d.get('schemaVersion')} != {SCHEMA_VERSION}")
    variables = {v["name"] for v in d.get("templating", {}).get("list", [])}
    datasources = {v["name"]: v.get("query") for v in d.get("templating", {}).get("list", [])
                   if v.get("type") == "datasource"}
    ids = [p.get("id") for p in all_panels(d)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"panel ids not unique: {ids}")
    for p in all_panels(d):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        for key in ("type", "title", "gridPos"):
            if key not in p:
                problems.append(f"{where}: missing {key!r}")
        g = p.get("gridPos", {})
        if not (g.get("w", 0) > 0 and g.get("h", 0) > 0 and g.get("x", -1) >= 0 and g.get("y", -1) >= 0
                and g["x"] + g["w"] <= GRID_COLUMNS):
            problems.append(f"{where}: gridPos {g} outside the 24-column grid")
        for name in used_variables(json.dumps([p.get("title", ""), p.get("repeat", ""), p.get("fieldConfig", {})])):
            if name not in variables and name not in BUILTIN_VARS:
                problems.append(f"{where}: uses undefined variable ${name}")
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            problems.append(f"{where}: no targets")
        for t in p.get("targets", []):
            ds = t.get("datasource") or {}
            query = t.get("rawSql") if ds.get("type") == STORE_TYPE else t.get("expr")
            if not query:
                problems.append(f"{where}: target {t.get('refId')} has no {'rawSql' if 'rawSql' in t else 'expr'}")
            if not ds.get("uid"):
                problems.append(f"{where}: target {t.get('refId')} has no datasource uid")
            else:
                var = used_variables(ds["uid"])
                if not var or datasources.get(next(iter(var))) != ds.get("type"):
                    problems.append(f"{where}: target {t.get('refId')} datasource {ds} is no datasource variable "
                                    f"of its type ({datasources})")
            for name in used_variables(query or ""):
                if name not in variables and name not in BUILTIN_VARS:
                    problems.append(f"{where}: uses undefined variable ${name}")
    for v in d.get("templating", {}).get("list", []):
        for name in used_variables(json.dumps(v.get("query", ""))):
            if name not in variables and name not in BUILTIN_VARS:
                problems.append(f"variable {v['name']}: uses undefined variable ${name}")
    return problems
