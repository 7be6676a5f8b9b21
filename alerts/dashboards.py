"""Grafana dashboards as code: a small typed builder (dataclasses) rendered to dashboard JSON (schemaVersion 39).

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
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE_UID = "slamon-prometheus"
DS = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
GRID_COLUMNS = 24

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


# --- the builder ------------------------------------------------------------------------------------------


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def to_json(self, ref_id: str) -> dict:
        return {
            "refId": ref_id, "datasource": dict(DS), "expr": self.expr, "legendFormat": self.legend,
            "instant": self.instant, "range": not self.instant,
            "format": "table" if self.table else "time_series", "editorMode": "code",
        }


@dataclass
class Panel:
    title: str
    kind: str  # stat | timeseries | bargauge | table | text
    targets: list[Target] = field(default_factory=list)
    w: int = 6
    h: int = 6
    unit: str | None = None
    decimals: int | None = None
    thresholds: list[tuple[float | None, str]] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""
    mappings: list[dict] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    overrides: list[dict] = field(default_factory=list)
    transformations: list[dict] = field(default_factory=list)
    custom: dict = field(default_factory=dict)

    def to_json(self, panel_id: int, x: int, y: int) -> dict:
        defaults: dict = {"color": {"mode": "thresholds" if self.kind in ("stat", "bargauge") else
                                            "palette-classic"},
                          "mappings": self.mappings, "custom": dict(self.custom)}
        if self.unit:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        steps = self.thresholds or [(None, GREEN)]
        defaults["thresholds"] = {"mode": "absolute",
                                  "steps": [{"value": v, "color": c} for v, c in steps]}
        out = {
            "id": panel_id, "type": self.kind, "title": self.title, "description": self.description,
            "gridPos": {"x": x, "y": y, "w": self.w, "h": self.h}, "datasource": dict(DS),
            "targets": [t.to_json(chr(ord("A") + i)) for i, t in enumerate(self.targets)],
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": {**_OPTIONS.get(self.kind, {}), **self.options},
        }
        if self.transformations:
            out["transformations"] = self.transformations
        return out


_REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_OPTIONS = {
    "stat": {"reduceOptions": _REDUCE, "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
             "orientation": "auto", "textMode": "value_and_name", "wideLayout": True,
             "showPercentChange": False},
    "bargauge": {"reduceOptions": _REDUCE, "orientation": "horizontal", "displayMode": "gradient",
                 "showUnfilled": True, "valueMode": "color"},
    "timeseries": {"legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                              "calcs": ["lastNotNull"]}, "tooltip": {"mode": "multi", "sort": "desc"}},
    "table": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
}


@dataclass
class Row:
    title: str
    panels: list[Panel]
    repeat: str | None = None


@dataclass
class Variable:
    name: str
    label: str
    query: str = ""
    kind: str = "query"  # query | custom
    multi: bool = True
    include_all: bool = True
    default: str | None = None

    def to_json(self) -> dict:
        out: dict = {"name": self.name, "label": self.label, "type": self.kind, "hide": 0,
                     "multi": self.multi, "includeAll": self.include_all, "skipUrlSync": False}
        if self.kind == "query":
            out.update({"datasource": dict(DS), "definition": self.query,
                        "query": {"query": self.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                        "refresh": 2, "regex": "", "sort": 1, "options": [],
                        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
                        if self.include_all else {}})
            if self.include_all:
                out["allValue"] = ".+"
        else:
            values = [v.strip() for v in self.query.split(",")]
            out.update({"query": self.query, "options": [
                {"selected": v == (self.default or values[0]), "text": v, "value": v} for v in values],
                "current": {"selected": True, "text": self.default or values[0],
                            "value": self.default or values[0]}})
        return out


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[Row]
    variables: list[Variable] = field(default_factory=list)
    tags: list[str] = field(default_factory=lambda: ["slamon"])
    refresh: str = "30s"
    time_from: str = "now-6h"

    def to_json(self) -> dict:
        panels: list[dict] = []
        next_id, y = 1, 0
        for row in self.rows:
            row_json = {"id": next_id, "type": "row", "title": row.title, "collapsed": False, "panels": [],
                        "gridPos": {"x": 0, "y": y, "w": GRID_COLUMNS, "h": 1}}
            if row.repeat:
                row_json["repeat"] = row.repeat
            panels.append(row_json)
            next_id, y = next_id + 1, y + 1
            x, line_h = 0, 0
            for panel in row.panels:
                if panel.w > GRID_COLUMNS:
                    raise ValueError(f"panel {panel.title!r} is wider than the grid")
                if x + panel.w > GRID_COLUMNS:
                    x, y, line_h = 0, y + line_h, 0
                panels.append(panel.to_json(next_id, x, y))
                next_id += 1
                x += panel.w
                line_h = max(line_h, panel.h)
            y += line_h
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": self.tags,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
            "timezone": "browser", "refresh": self.refresh, "time": {"from": self.time_from, "to": "now"},
            "timepicker": {}, "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard"}]},
            "links": [{"title": "slamon", "type": "dashboards", "tags": ["slamon"], "asDropdown": True,
                       "includeVars": True, "keepTime": True}],
            "templating": {"list": [v.to_json() for v in self.variables]},
            "panels": panels,
        }


# --- helpers for the dashboards ---------------------------------------------------------------------------


def stat(title: str, *targets: Target, **kw) -> Panel:
    return Panel(title, "stat", list(targets), **kw)


def series(title: str, *targets: Target, **kw) -> Panel:
    return Panel(title, "timeseries", list(targets), **kw)


def big(panel: Panel) -> Panel:
    panel.options.setdefault("text", {"titleSize": 18, "valueSize": 44})
    return panel


def ratio_steps(*levels: float) -> list[tuple[float | None, str]]:
    """red below levels[0], orange below levels[1], green above."""
    return [(None, RED), (levels[0], ORANGE), (levels[1], GREEN)]


def count_steps(orange: float, red: float) -> list[tuple[float | None, str]]:
    return [(None, GREEN), (orange, ORANGE), (red, RED)]


C = 'client=~"$client"'
CS = 'client=~"$client", sla=~"$sla"'
J = 'job="$job"'
UP_DOWN = [{"type": "value", "options": {"1": {"text": "UP", "color": GREEN, "index": 0},
                                         "0": {"text": "DOWN", "color": RED, "index": 1}}}]
CLIENT_VAR = Variable("client", "Client", "label_values(slamon_sla_info, client)")
JOB_VAR = Variable("job", "Job", "slamon", kind="custom", multi=False, include_all=False)


def floor() -> Dashboard:
    """Operations-floor wallboard: a row per client, readable from across the room."""
    row = Row("$client", repeat="client", panels=[
        big(stat("Service level (30 min)", Target(f'slamon_service_level_ratio{{{C}, window="30m"}}', "{{sla}}"),
                 unit="percentunit", decimals=1, thresholds=ratio_steps(0.7, 0.8), w=6, h=6,
                 description="Answered within the SLA's threshold over the last 30 minutes, per service-level SLA")),
        big(stat("Calls waiting", Target(f"sum by (client) (slamon_calls_waiting{{{C}}})", "waiting"),
                 thresholds=count_steps(5, 10), decimals=0, w=3, h=6)),
        big(stat("Longest wait", Target(f"max by (client) (slamon_calls_longest_wait_seconds{{{C}}})",
                                        "longest"),
                 unit="s", decimals=0, thresholds=count_steps(30, 60), w=3, h=6)),
        big(stat("Breaching within 30 min",
                 Target(f'sum by (client) (slamon_sla_breaching_soon_items{{{C}, within="30m"}})', "items"),
                 decimals=0, thresholds=count_steps(1, 5), w=4, h=6,
                 description="Open tickets whose deadline falls within 30 minutes")),
        big(stat("Tickets past a warning stage",
                 Target(f"sum by (client, sla) (slamon_sla_at_risk_items{{{C}}})", "{{sla}}"),
                 decimals=0, thresholds=count_steps(5, 20), w=8, h=6,
                 description="Open tickets whose elapsed time reached one of the SLA's warning stages")),
        big(stat("Uptime (period)", Target(f"slamon_uptime_availability_ratio{{{C}}}", "{{service}}"),
                 unit="percentunit", decimals=3, thresholds=ratio_steps(0.995, 0.999), w=8, h=5)),
        big(stat("SLAs on target", Target(f"avg by (client) (slamon_sla_met{{{C}}})", "on target"),
                 unit="percentunit", decimals=0, thresholds=ratio_steps(0.8, 1.0), w=4, h=5,
                 description="Share of the client's SLAs whose period-to-date value meets the target")),
        big(stat("Open tickets", Target(f"sum by (client) (slamon_sla_open_items{{{C}}})", "open"),
                 decimals=0, thresholds=[(None, BLUE)], w=4, h=5)),
        big(stat("Projected credit", Target(
            f"sum by (client, currency) (slamon_penalty_projected_credit{{{C}}} "
            f"* on (client, sla) group_left (currency) slamon_sla_info{{{C}}})", "{{currency}}"),
            decimals=0, thresholds=count_steps(1, 1000), w=8, h=5,
            description="Service credit the projected end-of-period values would earn (contract currency)")),
    ])
    return Dashboard("slamon-floor", "slamon / Operations floor",
                     "Wallboard: service level, queues and tickets at risk per client, live", [row],
                     [CLIENT_VAR], refresh="10s", time_from="now-3h")


def client_page() -> Dashboard:
    sla_var = Variable("sla", "SLA", f"label_values(slamon_sla_info{{{C}}}, sla)")
    client = Variable("client", "Client", "label_values(slamon_sla_info, client)", multi=False,
                      include_all=False)
    table = Panel("SLAs this period", "table", [
        Target(f"slamon_sla_compliance_ratio{{{CS}}}", instant=True, table=True),
        Target(f"slamon_sla_target_ratio{{{CS}}}", instant=True, table=True),
        Target(f"slamon_sla_projected_ratio{{{CS}}}", instant=True, table=True),
        Target(f"slamon_sla_error_budget_remaining_ratio{{{CS}}}", instant=True, table=True),
    ], w=16, h=9, unit="percentunit", decimals=2,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "__name__": True, "instance": True, "job": True},
                "renameByName": {"Value #A": "Period to date", "Value #B": "Target", "Value #C": "Projected",
                                 "Value #D": "Error budget left"}}}],
        description="Ratio SLAs (tickets: the objective); asa/aht below")
    return Dashboard("slamon-client", "slamon / Client SLAs",
                     "One client's SLAs: period to date vs target, budget, projection, penalties", [
        Row("Period to date", [
            table,
            big(stat("Projected credit", Target(
                f"slamon_penalty_projected_credit{{{CS}}} * on (client, sla) group_left (currency) "
                f"slamon_sla_info{{{CS}}}", "{{sla}} ({{currency}})"),
                decimals=0, thresholds=count_steps(1, 1000), w=4, h=9,
                description="Penalty exposure: credit the projected end-of-period value earns")),
            big(stat("Credit earned so far", Target(
                f"slamon_penalty_credit{{{CS}}} * on (client, sla) group_left (currency) "
                f"slamon_sla_info{{{CS}}}", "{{sla}} ({{currency}})"),
                decimals=0, thresholds=count_steps(1, 1000), w=4, h=9)),
        ]),
        Row("Over time", [
            series("Compliance vs target",
                   Target(f"slamon_sla_compliance_ratio{{{CS}}}", "{{sla}}"),
                   Target(f"slamon_sla_target_ratio{{{CS}}}", "{{sla}} target"),
                   unit="percentunit", w=12, h=8,
                   overrides=[_dashed("/ target$/")]),
            series("Error budget remaining (burn-down)",
                   Target(f"slamon_sla_error_budget_remaining_ratio{{{CS}}}", "{{sla}}"),
                   unit="percentunit", w=12, h=8, thresholds=[(None, RED), (0, GREEN)],
                   custom={"thresholdsStyle": {"mode": "line"}},
                   description="1 - bad / allowed bad, current period; below 0 the period misses its target"),
            series("Projected end-of-period value",
                   Target(f"slamon_sla_projected_ratio{{{CS}}}", "{{sla}}"),
                   Target(f"slamon_sla_target_ratio{{{CS}}}", "{{sla}} target"),
                   unit="percentunit", w=12, h=8, overrides=[_dashed("/ target$/")]),
            series("Bad decisions over time (breaches, abandons, errors)",
                   Target(f"sum by (sla) (increase(slamon_sla_bad_total{{{CS}}}[$__rate_interval]))", "{{sla}}"),
                   Target(f"sum by (sla) (increase(slamon_uptime_downtime_seconds{{{CS}}}[$__rate_interval]))",
                          "{{sla}} downtime (s)"),
                   w=12, h=8, custom={"drawStyle": "bars", "fillOpacity": 60}),
            series("Burn rate (engine: 1h, 6h, 24h)",
                   Target(f"slamon_sla_burn_rate{{{CS}}}", "{{sla}} {{window}}"), w=12, h=8,
                   thresholds=[(None, GREEN), (1, RED)], custom={"thresholdsStyle": {"mode": "line"}}),
            series("Projected credit over time",
                   Target(f"slamon_penalty_projected_credit{{{CS}}}", "{{sla}}"), w=12, h=8),
        ]),
        Row("Calls and handling times", [
            series("Service level (rolling windows)",
                   Target(f"slamon_service_level_ratio{{{CS}}}", "{{sla}} {{window}}"),
                   unit="percentunit", w=8, h=8),
            series("ASA / AHT (period) and ASA (30 min)",
                   Target(f"slamon_sla_value_seconds{{{CS}}}", "{{sla}} period"),
                   Target(f'slamon_asa_seconds{{{CS}, window="30m"}}', "{{sla}} 30 min"),
                   unit="s", w=8, h=8),
            series("Response / wait / handle time quantiles",
                   Target(f"slamon_sla_latency_seconds{{{CS}}}", "{{sla}} q{{quantile}}"), unit="s", w=8, h=8),
            series("Open tickets by priority",
                   Target(f"sum by (sla, priority) (slamon_sla_open_items{{{CS}}})", "{{sla}} {{priority}}"),
                   w=12, h=8),
            series("Calls waiting by queue",
                   Target(f"sum by (queue) (slamon_calls_waiting{{{C}}})", "{{queue}}"), w=12, h=8),
        ]),
    ], [client, sla_var], refresh="1m", time_from="now-7d")


def _dashed(regex: str) -> dict:
    return {"matcher": {"id": "byRegexp", "options": regex},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}


def oncall() -> Dashboard:
    return Dashboard("slamon-oncall", "slamon / On-call",
                     "Burn rates, firing alerts and what breaches next", [
        Row("Alerts", [
            Panel("Alerts firing and pending", "table", [Target(
                'sum by (alertname, severity, client, sla, alertstate) '
                '(ALERTS{alertname=~"Slamon.+", client=~"$client|all"})', instant=True, table=True)],
                w=24, h=8, transformations=[{"id": "organize", "options": {
                    "excludeByName": {"Time": True, "Value": True}}}],
                description="From Prometheus' ALERTS series: pending alerts are about to fire"),
        ]),
        Row("Burn rates", [
            series("Burn rate 1h (recorded)",
                   Target(f"client_sla:slamon_sla_burn_rate:1h{{{C}}}", "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], custom={"thresholdsStyle": {"mode": "line"}},
                   description="bad / decided over 1h / allowed error ratio; 1 = exactly on budget"),
            series("Burn rate 6h (recorded)",
                   Target(f"client_sla:slamon_sla_burn_rate:6h{{{C}}}", "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], custom={"thresholdsStyle": {"mode": "line"}}),
            series("Burn rate 24h (engine, event time)",
                   Target(f'slamon_sla_burn_rate{{{C}, window="24h"}}', "{{client}} {{sla}}"), w=8, h=8,
                   thresholds=[(None, GREEN), (1, RED)], custom={"thresholdsStyle": {"mode": "line"}}),
            Panel("Error budget left, lowest 10", "bargauge", [Target(
                f"bottomk(10, slamon_sla_error_budget_remaining_ratio{{{C}}})", "{{client}} {{sla}}",
                instant=True)], unit="percentunit", min=-1, max=1, w=12, h=8,
                thresholds=[(None, RED), (0, ORANGE), (0.25, GREEN)]),
            stat("Breaching within 30 min",
                 Target(f'sum by (client, sla) (slamon_sla_breaching_soon_items{{{C}, within="30m"}})',
                        "{{client}} {{sla}}"), decimals=0, thresholds=count_steps(1, 5), w=6, h=8),
            stat("Next deadline", Target(f"min by (client, sla) (slamon_sla_next_deadline_seconds{{{C}}})",
                                         "{{client}} {{sla}}"),
                 unit="s", thresholds=[(None, RED), (900, ORANGE), (1800, GREEN)], w=6, h=8),
        ]),
        Row("Services and data", [
            stat("Services", Target(f"slamon_uptime_service_up{{{C}}}", "{{client}} {{service}}"),
                 mappings=UP_DOWN, thresholds=[(None, RED), (1, GREEN)], w=8, h=5),
            stat("Newest probe age", Target(f"slamon_uptime_last_probe_age_seconds{{{C}}}",
                                            "{{client}} {{service}}"),
                 unit="s", thresholds=count_steps(120, 300), w=8, h=5),
            stat("Event-time lag", Target(f"max by (client) (slamon_event_time_lag_seconds{{{C}}})", "{{client}}"),
                 unit="s", thresholds=count_steps(600, 1800), w=8, h=5),
        ]),
    ], [CLIENT_VAR, JOB_VAR], refresh="30s", time_from="now-12h")


def pipeline() -> Dashboard:
    return Dashboard("slamon-pipeline", "slamon / Pipeline health",
                     "Workers, events, dead letters, lag and checkpoints", [
        Row("Workers", [
            stat("Workers up", Target(f"sum(up{{{J}}})", "up"), thresholds=[(None, RED), (1, GREEN)], w=4, h=5),
            stat("Workers down", Target(f"count(up{{{J}}} == 0) or vector(0)", "down"),
                 thresholds=count_steps(1, 1), w=4, h=5),
            stat("Consumer lag", Target(f"sum(slamon_consumer_lag_messages{{{J}}})", "messages"),
                 thresholds=count_steps(1000, 10000), w=4, h=5),
            stat("Dead letters (1h)", Target(f"sum(increase(slamon_events_rejected_total{{{J}}}[1h]))", "events"),
                 decimals=0, thresholds=count_steps(1, 20), w=4, h=5),
            stat("Scrape duration", Target(f"max(slamon_scrape_duration_seconds{{{J}}})", "max"), unit="s",
                 thresholds=count_steps(1, 5), w=4, h=5),
            stat("Orphaned events held", Target(f"sum(slamon_events_orphaned{{{J}}})", "held"),
                 thresholds=count_steps(100, 1000), w=4, h=5),
        ]),
        Row("Events", [
            series("Events accepted / s by kind",
                   Target(f"sum by (kind) (rate(slamon_events_total{{{J}}}[$__rate_interval]))", "{{kind}}"),
                   unit="reqps", w=12, h=8),
            series("Input messages / s by partition",
                   Target(f"sum by (partition) (rate(slamon_events_received_total{{{J}}}[$__rate_interval]))",
                          "p{{partition}}"), unit="reqps", w=12, h=8),
            series("Dead letters by reason",
                   Target(f"sum by (reason) (increase(slamon_events_rejected_total{{{J}}}[$__rate_interval]))",
                          "{{reason}}"), w=12, h=8, custom={"drawStyle": "bars", "fillOpacity": 60}),
            series("Duplicates, misrouted, SLA events / s",
                   Target(f"sum(rate(slamon_events_duplicate_total{{{J}}}[$__rate_interval]))", "duplicates"),
                   Target(f"sum(rate(slamon_events_misrouted_total{{{J}}}[$__rate_interval]))", "misrouted"),
                   Target(f"sum(rate(slamon_sla_events_total{{{J}}}[$__rate_interval]))", "SLA events"),
                   unit="reqps", w=12, h=8),
        ]),
        Row("Lag and state", [
            series("Consumer lag by partition",
                   Target(f"sum by (partition) (slamon_consumer_lag_messages{{{J}}})", "p{{partition}}"),
                   w=8, h=8),
            series("Event-time lag by client",
                   Target(f"max by (client) (slamon_event_time_lag_seconds{{{J}}})", "{{client}}"), unit="s",
                   w=8, h=8),
            series("Checkpoint age",
                   Target(f"max by (partition) (slamon_checkpoint_age_seconds{{{J}}})", "p{{partition}}"),
                   unit="s", w=8, h=8),
            series("Checkpoint size",
                   Target(f"sum by (partition) (slamon_checkpoint_size_bytes{{{J}}})", "p{{partition}}"),
                   unit="bytes", w=8, h=8),
            series("Outputs not yet confirmed",
                   Target(f"sum by (partition) (slamon_outbox_unconfirmed{{{J}}})", "p{{partition}}"), w=8, h=8),
            series("Input offset vs checkpoint offset",
                   Target(f"max by (partition) (slamon_input_offset{{{J}}})", "p{{partition}} input"),
                   Target(f"max by (partition) (slamon_checkpoint_offset{{{J}}})", "p{{partition}} checkpoint"),
                   w=8, h=8),
        ]),
    ], [JOB_VAR], refresh="30s", time_from="now-6h")


def dashboards() -> list[Dashboard]:
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
