"""Grafana dashboards as code, on grafana-foundation-sdk (Grafana's typed builders, for Grafana 11.3), rendered
to dashboard JSON (schemaVersion 39).

    slamon dashboards -o deploy/grafana/dashboards

Four dashboards, all on the provisioned Prometheus datasource (uid `slamon-prometheus`):

  slamon-floor     operations-floor wallboard: one row per client (repeated over `$client`), big stat
                   panels: service level now, calls waiting, longest wait, tickets at risk, breaching soon,
                   uptime, share of SLAs on target
  slamon-client    one client's SLAs: period-to-date vs target, error-budget burn-down, projected
                   compliance, penalty exposure, breaches over time, calls and latency (`$client`, `$sla`)
  slamon-oncall    burn rates (recorded rules and engine), firing/pending alerts (ALERTS), what breaches
                   next, services and data freshness
  slamon-pipeline  workers, events in/out, dead letters, consumer and event-time lag, checkpoints

Contract-independent: clients and SLAs come from template variables over `slamon_sla_info`, so the
dashboards never need regenerating when contracts change.
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
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from monitor import conventions as names

DATASOURCE_UID = "slamon-prometheus"
DS = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
SCHEMA_VERSION = 39  # the SDK's default for Grafana 11.3 (docker-compose.yml runs grafana/grafana:11.3.0)
GRID_COLUMNS = 24

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"

Steps = list[tuple[float | None, str]]
PanelBuilder = stat_b.Panel | timeseries_b.Panel | table_b.Panel | bargauge_b.Panel


# --- panels and queries on grafana-foundation-sdk's builders ------------------------------------------------


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> prometheus_b.Dataquery:
    """A PromQL query in code mode; the panel gives it its refId (A, B, ...)."""
    q = (prometheus_b.Dataquery().datasource(DS).expr(expr).legend_format(legend).editor_mode(pm.QueryEditorMode.CODE)
         .format(pm.PromQueryFormat.TABLE if table else pm.PromQueryFormat.TIME_SERIES))
    return q.instant() if instant else q.range()


def _common(p: PanelBuilder, title: str, targets: tuple[prometheus_b.Dataquery, ...], *, w: int, h: int,
            color: dm.FieldColorModeId, unit: str | None = None, decimals: int | None = None,
            thresholds: Steps | None = None, min: float | None = None, max: float | None = None,
            description: str = "", mappings: list[dm.ValueMapping] | None = None) -> PanelBuilder:
    p.title(title).description(description).datasource(DS).span(w).height(h)
    for i, t in enumerate(targets):
        p.with_target(t.ref_id(chr(ord("A") + i)))
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


def ratio_steps(*levels: float) -> Steps:
    """red below levels[0], orange below levels[1], green above."""
    return [(None, RED), (levels[0], ORANGE), (levels[1], GREEN)]


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


def build(uid: str, title: str, description: str, rows: list[Row],
          variables: list[dashboard_b.QueryVariable | dashboard_b.CustomVariable], *, refresh: str,
          time_from: str) -> GeneratedDashboard:
    """The dashboard with every panel placed: rows expanded, panels left to right, wrapping to a new line
    when the next one does not fit; panel ids 1, 2, ... in that order."""
    d = (dashboard_b.Dashboard(title).uid(uid).description(description).tags(["slamon"]).version(1).editable()
         .tooltip(dm.DashboardCursorSync.CROSSHAIR).timezone("browser").refresh(refresh).time(time_from, "now")
         .fiscal_year_start_month(0).live_now(False).week_start("")
         .annotation(dashboard_b.AnnotationQuery().built_in(1).name("Annotations & Alerts").type("dashboard")
                     .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --")).enable(True)
                     .hide(True).icon_color("rgba(0, 211, 255, 1)"))
         .link(dashboard_b.DashboardLink("slamon").type(dm.DashboardLinkType.DASHBOARDS).tags(["slamon"])
               .as_dropdown(True).include_vars(True).keep_time(True))
         .variables(variables))
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


def floor() -> GeneratedDashboard:
    """Operations-floor wallboard: a row per client, readable from across the room."""
    row = Row("$client", repeat="client", panels=[
        big(stat("Service level (30 min)",
                 target(f'{names.SERVICE_LEVEL_WINDOW}{{{C}, {names.WINDOW}="30m"}}', "{{sla}}"),
                 unit="percentunit", decimals=1, thresholds=ratio_steps(0.7, 0.8), w=6, h=6,
                 description="Answered within the SLA's threshold over the last 30 minutes, per service-level SLA")),
        big(stat("Calls waiting", target(f"sum by (client) ({names.CALLS_WAITING}{{{C}}})", "waiting"),
                 thresholds=count_steps(5, 10), decimals=0, w=3, h=6)),
        big(stat("Longest wait", target(f"max by (client) ({names.CALLS_LONGEST_WAIT}{{{C}}})",
                                        "longest"),
                 unit="s", decimals=0, thresholds=count_steps(30, 60), w=3, h=6)),
        big(stat("Breaching within 30 min",
                 target(f'sum by (client) ({names.SLA_BREACHING_SOON_ITEMS}{{{C}, {names.WITHIN}="30m"}})', "items"),
                 decimals=0, thresholds=count_steps(1, 5), w=4, h=6,
                 description="Open tickets whose deadline falls within 30 minutes")),
        big(stat("Tickets past a warning stage",
                 target(f"sum by (client, sla) ({names.SLA_AT_RISK_ITEMS}{{{C}}})", "{{sla}}"),
                 decimals=0, thresholds=count_steps(5, 20), w=8, h=6,
                 description="Open tickets whose elapsed time reached one of the SLA's warning stages")),
        big(stat("Uptime (period)", target(f"{names.UPTIME_AVAILABILITY}{{{C}}}", "{{service}}"),
                 unit="percentunit", decimals=3, thresholds=ratio_steps(0.995, 0.999), w=8, h=5)),
        big(stat("SLAs on target", target(f"avg by (client) ({names.SLA_MET}{{{C}}})", "on target"),
                 unit="percentunit", decimals=0, thresholds=ratio_steps(0.8, 1.0), w=4, h=5,
                 description="Share of the client's SLAs whose period-to-date value meets the target")),
        big(stat("Open tickets", target(f"sum by (client) ({names.SLA_OPEN_ITEMS}{{{C}}})", "open"),
                 decimals=0, thresholds=[(None, BLUE)], w=4, h=5)),
        big(stat("Projected credit", target(
            f"sum by (client, currency) ({names.PENALTY_PROJECTED_CREDIT}{{{C}}} "
            f"* on (client, sla) group_left (currency) {names.SLA_INFO}{{{C}}})", "{{currency}}"),
            decimals=0, thresholds=count_steps(1, 1000), w=8, h=5,
            description="Service credit the projected end-of-period values would earn (contract currency)")),
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
            big(stat("Projected credit", target(
                f"{names.PENALTY_PROJECTED_CREDIT}{{{CS}}} * on (client, sla) group_left (currency) "
                f"{names.SLA_INFO}{{{CS}}}", "{{sla}} ({{currency}})"),
                decimals=0, thresholds=count_steps(1, 1000), w=4, h=9,
                description="Penalty exposure: credit the projected end-of-period value earns")),
            big(stat("Credit earned so far", target(
                f"{names.PENALTY_CREDIT}{{{CS}}} * on (client, sla) group_left (currency) "
                f"{names.SLA_INFO}{{{CS}}}", "{{sla}} ({{currency}})"),
                decimals=0, thresholds=count_steps(1, 1000), w=4, h=9)),
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
                   target(f"{names.PENALTY_PROJECTED_CREDIT}{{{CS}}}", "{{sla}}"), w=12, h=8),
        ]),
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
    ], [client, sla_var], refresh="1m", time_from="now-7d")


def oncall() -> GeneratedDashboard:
    return build("slamon-oncall", "slamon / On-call",
                 "Burn rates, firing alerts and what breaches next", [
        Row("Alerts", [
            table("Alerts firing and pending", target(
                'sum by (alertname, severity, client, sla, alertstate) '
                '(ALERTS{alertname=~"Slamon.+", client=~"$client|all"})', instant=True, table=True),
                w=24, h=8, transformations=[transform("organize", excludeByName={"Time": True, "Value": True})],
                description="From Prometheus' ALERTS series: pending alerts are about to fire"),
        ]),
        Row("Burn rates", [
            series("Burn rate 1h (recorded)",
                   target(f"{names.recorded_burn_rate('1h')}{{{C}}}", "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], threshold_line=True,
                   description="bad / decided over 1h / allowed error ratio; 1 = exactly on budget"),
            series("Burn rate 6h (recorded)",
                   target(f"{names.recorded_burn_rate('6h')}{{{C}}}", "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], threshold_line=True),
            series("Burn rate 24h (engine, event time)",
                   target(f'{names.SLA_BURN_RATE}{{{C}, {names.WINDOW}="24h"}}', "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], threshold_line=True),
            bar_gauge("Error budget left, lowest 10", target(
                f"bottomk(10, {names.SLA_ERROR_BUDGET_REMAINING}{{{C}}})", "{{client}} {{sla}}",
                instant=True), unit="percentunit", min=-1, max=1, w=12, h=8,
                thresholds=[(None, RED), (0, ORANGE), (0.25, GREEN)]),
            stat("Breaching within 30 min",
                 target(f'sum by (client, sla) ({names.SLA_BREACHING_SOON_ITEMS}{{{C}, {names.WITHIN}="30m"}})',
                        "{{client}} {{sla}}"), decimals=0, thresholds=count_steps(1, 5), w=6, h=8),
            stat("Next deadline", target(f"min by (client, sla) ({names.SLA_NEXT_DEADLINE}{{{C}}})",
                                         "{{client}} {{sla}}"),
                 unit="s", thresholds=[(None, RED), (900, ORANGE), (1800, GREEN)], w=6, h=8),
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
    ], [client_variable(), job_variable()], refresh="30s", time_from="now-12h")


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
                "__all", "__name"}
_VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in _VAR.findall(text)}


def all_panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def check_dashboard(d: dict) -> list[str]:
    """Problems with a dashboard JSON (empty: fine)."""
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "refresh"):
        if key not in d:
            problems.append(f"missing key {key!r}")
    if d.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion {d.get('schemaVersion')} != {SCHEMA_VERSION}")
    variables = {v["name"] for v in d.get("templating", {}).get("list", [])}
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
        for name in used_variables(json.dumps(p.get("title", "")) + json.dumps(p.get("repeat", ""))):
            if name not in variables and name not in BUILTIN_VARS:
                problems.append(f"{where}: uses undefined variable ${name}")
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            problems.append(f"{where}: no targets")
        for t in p.get("targets", []):
            if not t.get("expr"):
                problems.append(f"{where}: target {t.get('refId')} has no expr")
            if not (t.get("datasource") or {}).get("uid"):
                problems.append(f"{where}: target {t.get('refId')} has no datasource uid")
            for name in used_variables(t.get("expr", "")):
                if name not in variables and name not in BUILTIN_VARS:
                    problems.append(f"{where}: uses undefined variable ${name}")
    for v in d.get("templating", {}).get("list", []):
        for name in used_variables(json.dumps(v.get("query", ""))):
            if name not in variables and name not in BUILTIN_VARS:
                problems.append(f"variable {v['name']}: uses undefined variable ${name}")
    return problems
