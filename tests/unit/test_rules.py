"""Rule generation (alerts.rules), the alerting config (alerts.config) and alertmanager.yml (alerts.alertmanager):
pure functions of the contracts and the config, pinned with hand-written expectations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts.alertmanager import alertmanager_config, receivers_from_env, write_alertmanager
from alerts.config import Alerting, AlertingError, default_windows, load_alerting, parse_alerting
from alerts.rules import ALERTS, all_alerts, burn_factor, burn_tiers, plan, rule_files, sla_facts, write_rules
from monitor.contracts import load_contracts, parse_contracts

ROOT = Path(__file__).resolve().parents[2]
DAY, HOUR = 86400, 3600


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(ROOT / "examples" / "contracts.yaml")


@pytest.fixture(scope="module")
def example_alerting():
    return load_alerting(ROOT / "examples" / "alerting.yaml", env={})


def _alert(groups, name, client, sla, severity=None, long_window=None):
    found = [a for a in all_alerts(groups) if a.name == name and a.client == client and a.sla == sla
             and (severity is None or a.severity == severity)
             and (long_window is None or a.labels.get("long_window") == long_window)]
    assert len(found) == 1, (name, client, sla, severity, found)
    return found[0]


def _burns(groups, client, sla, severity=None):
    return [a for a in all_alerts(groups) if a.name == "SlamonErrorBudgetBurn" and a.client == client
            and a.sla == sla and (severity is None or a.severity == severity)]


# --- the factor formula -----------------------------------------------------------------------------------


def test_workbook_factors_for_a_30_day_period():
    period = 30 * DAY
    assert burn_factor(0.02, period, HOUR) == 14.4
    assert burn_factor(0.05, period, 6 * HOUR) == 6
    assert burn_factor(0.10, period, DAY) == 3
    assert burn_factor(0.10, period, 3 * DAY) == 1


def test_factors_scale_to_the_period_and_never_drop_below_one():
    week = 7 * DAY
    assert burn_factor(0.02, week, HOUR) == 3.36
    assert burn_factor(0.05, week, 6 * HOUR) == 1.4
    assert burn_factor(0.10, week, DAY) == 1  # 0.7: the SLA is on track, no alert below 1x
    assert burn_factor(0.10, week, DAY, min_factor=0) == 0.7


def test_windows_yaml_is_the_workbook_table():
    w = default_windows()
    assert [(t.name, t.severity, t.budget_share, t.long_window, t.short_window) for t in w.tiers] == [
        ("page-fast", "page", 0.02, HOUR, 300), ("page-slow", "page", 0.05, 6 * HOUR, 1800),
        ("ticket-fast", "ticket", 0.10, DAY, 2 * HOUR), ("ticket-slow", "ticket", 0.10, 3 * DAY, 6 * HOUR)]
    assert w.reference_period == 30 * DAY and w.min_factor == 1.0
    from alerts.config import _BUILTIN_WINDOWS, Windows

    assert Windows.model_validate(_BUILTIN_WINDOWS) == w  # the fallback for installs without data files


def test_tiers_per_period_kind(contracts):
    acme = contracts.clients["acme-retail"]
    fr = sla_facts("acme-retail", acme.slas[0])  # month, objective 0.95
    tiers, notes = burn_tiers(fr, Alerting())
    assert [(t.name, t.factor) for t in tiers] == [("page-fast", 14.4), ("page-slow", 6), ("ticket-fast", 3),
                                                    ("ticket-slow", 1)]
    assert notes == []
    phone = sla_facts("acme-retail", acme.slas[2])  # weekly service level 80 %
    tiers, _ = burn_tiers(phone, Alerting())
    assert [(t.name, t.factor) for t in tiers] == [("page-fast", 3.36), ("page-slow", 1.4), ("ticket-fast", 1),
                                                    ("ticket-slow", 1)]
    resolution = sla_facts("acme-retail", acme.slas[1])  # objective 0.90: 14.4 x 10 % > 100 % bad
    tiers, notes = burn_tiers(resolution, Alerting())
    assert "page-fast" not in [t.name for t in tiers]
    assert any("unreachable" in n for n in notes)


def test_a_tier_longer_than_the_period_is_dropped():
    c = parse_contracts("""
clients:
  daily:
    timezone: UTC
    slas:
      - {name: acc, kind: accuracy, target: 0.99, period: day}
""")
    tiers, notes = burn_tiers(sla_facts("daily", c.clients["daily"].slas[0]), Alerting())
    assert [t.name for t in tiers] == ["page-fast", "page-slow", "ticket-fast"]
    assert [t.factor for t in tiers] == [1, 1, 1]
    assert any("ticket-slow" in n and "exceeds the period" in n for n in notes)


def test_tier_overrides(contracts):
    alerting = parse_alerting("""
burn_rate:
  tiers: {ticket-slow: off}
  min_bad: 0
slas:
  acme-retail/first-response:
    min_volume: 5
    tiers:
      page-fast: {factor: 10}
      page-slow: {budget_share: 0.1}
""", env={})
    groups = plan(contracts, alerting)
    pages = _burns(groups, "acme-retail", "first-response", "page")
    assert [(t.name, t.bound) for a in pages for t in a.ratio.tiers] == [("page-fast", 10), ("page-slow", 12)]
    assert all(a.ratio.gate == 5 and ">= 5" in a.expr for a in pages)
    tickets = _burns(groups, "acme-retail", "first-response", "ticket")
    assert [t.name for a in tickets for t in a.ratio.tiers] == ["ticket-fast"]  # ticket-slow off everywhere
    other = _burns(groups, "globex-bank", "first-response", "page")
    assert [t.bound for a in other for t in a.ratio.tiers] == [14.4, 6] and other[0].ratio.gate == 20
    with pytest.raises(ValueError, match="unknown burn-rate tier"):
        plan(contracts, parse_alerting("slas: {acme-retail/csat: {tiers: {nope: off}}}", env={}))


# --- the generated rules ----------------------------------------------------------------------------------


def test_a_page_tier_needs_min_bad_items_behind_its_threshold(contracts):
    """A page must stand for at least `burn_rate.min_bad` bad items: the long window's volume gate is raised to
    min_bad / (factor x allowed); ticket tiers and uptime keep `min_volume`."""
    groups = plan(contracts)
    gates = {(a.sla, a.labels["long_window"]): a.ratio.gate for a in all_alerts(groups)
             if a.name == "SlamonErrorBudgetBurn" and a.client == "zenith-health"}
    assert gates[("processing-accuracy", "1h")] == 149  # 10 / (14.4 x 0.5 %): an audit batch cannot page
    assert gates[("processing-accuracy", "6h")] == 358
    assert gates[("processing-accuracy", "1d")] == 20  # a ticket: min_volume
    quiet = plan(contracts, parse_alerting("burn_rate: {min_bad: 0}", env={}))
    assert {a.ratio.gate for a in all_alerts(quiet) if a.name == "SlamonErrorBudgetBurn" and
            a.client == "zenith-health" and a.sla == "processing-accuracy"} == {20}
    uptime = [a for a in all_alerts(groups) if a.name == "SlamonErrorBudgetBurn" and a.sla == "ivr-uptime"]
    assert {a.ratio.gate for a in uptime} == {1800}


def test_burn_rate_expression_is_multiwindow_and_gated(contracts):
    groups = plan(contracts)
    sel = '{client="acme-retail", sla="first-response"}'
    fast = _alert(groups, "SlamonErrorBudgetBurn", "acme-retail", "first-response", "page", "1h")
    assert fast.expr == (
        f"client_sla:slamon_sla_burn_rate:1h{sel} > 14.4\n"
        f"and client_sla:slamon_sla_burn_rate:5m{sel} > 14.4\n"
        f"and client_sla:slamon_sla_decided:increase1h{sel} >= 20\n"
        f"and (client_sla:slamon_sla_bad:increase1h{sel} - 0.05 * client_sla:slamon_sla_decided:increase1h{sel}) "
        f"/ sqrt(0.0475 * client_sla:slamon_sla_decided:increase1h{sel}) > 3")  # more bad than chance explains
    slow = _alert(groups, "SlamonErrorBudgetBurn", "acme-retail", "first-response", "page", "6h")
    assert slow.expr.startswith(
        f"client_sla:slamon_sla_burn_rate:6h{sel} > 6\n"
        f"and client_sla:slamon_sla_burn_rate:30m{sel} > 6\n"
        f"and client_sla:slamon_sla_decided:increase6h{sel} >= 34\n")  # min_bad 10 / (6 x 5 %): 34 items
    assert slow.ratio.min_z == 3 and not [a for a in _burns(groups, "acme-retail", "first-response", "ticket")
                                          if a.ratio.min_z or "sqrt" in a.expr]  # tickets: no significance test
    assert fast.for_s == slow.for_s == 300 and fast.severity == "page"
    # one rule per tier, labelled with its windows; the workbook tiers 14.4/6/3/1 over 1h+5m .. 3d+6h
    assert [(a.labels["severity"], a.labels["long_window"], a.labels["short_window"], a.ratio.tiers[0].bound)
            for a in _burns(groups, "acme-retail", "first-response")] == [
        ("critical", "1h", "5m", 14.4), ("critical", "6h", "30m", 6), ("warning", "1d", "2h", 3),
        ("warning", "3d", "6h", 1)]
    rules = rule_files(contracts)["slamon-acme-retail.rules.yml"]["groups"][0]["rules"]
    by_name = {r.get("record"): r for r in rules if "record" in r}
    assert by_name["client_sla:slamon_sla_decided:increase1h"]["expr"] == (
        f"sum by (client, sla) (increase(slamon_sla_decided_total{sel}[1h]))")
    assert by_name["client_sla:slamon_sla_burn_rate:1h"]["expr"] == (
        f"client_sla:slamon_sla_bad:increase1h{sel}\n/ client_sla:slamon_sla_decided:increase1h{sel}\n/ 0.05")
    assert [r.get("record") or r["alert"] for r in rules].index("SlamonErrorBudgetBurn") > 20  # records first


def test_allowed_error_ratio_per_kind(contracts):
    facts = {(c, s.name): sla_facts(c, s) for c, cl in contracts.clients.items() for s in cl.slas}
    assert facts[("acme-retail", "first-response")].allowed == 0.05  # 1 - objective
    assert facts[("acme-retail", "abandon-rate")].allowed == 0.05  # the ceiling itself
    assert facts[("acme-retail", "phone-service-level")].allowed == 0.2
    assert facts[("globex-bank", "ivr-uptime")].allowed == 0.001
    assert facts[("acme-retail", "asa")].allowed is None
    assert facts[("zenith-health", "csat-mean")].allowed is None
    assert facts[("globex-bank", "online-banking-uptime")].period_s == 30 * DAY  # rolling 30d


def test_uptime_burn_rate_reads_the_up_and_down_seconds(contracts):
    rules = {r.get("record", r.get("alert")): r for g in rule_files(contracts)["slamon-globex-bank.rules.yml"]
             ["groups"] if g["name"] == "slamon:globex-bank:ivr-uptime" for r in g["rules"]}
    decided = rules["client_sla:slamon_sla_decided:increase1h"]["expr"]
    assert "increase(slamon_uptime_up_seconds{" in decided and "increase(slamon_uptime_downtime_seconds{" in decided


def test_every_alert_has_labels_annotations_and_a_runbook(contracts, example_alerting):
    groups = plan(contracts, example_alerting)
    names = set()
    for a in all_alerts(groups):
        rule = a.as_rule()
        assert rule["labels"]["severity"] == {"page": "critical", "ticket": "warning", "info": "info"}[a.severity]
        assert rule["labels"]["client"] and rule["labels"]["sla"] and rule["labels"]["category"]
        assert rule["labels"]["team"] == "sla-operations" and rule["labels"]["env"] == "production"
        assert ("long_window" in rule["labels"]) == (a.name == "SlamonErrorBudgetBurn")
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks/{a.name}.md"  # shipped with the deployment
        assert rule["annotations"]["dashboard_url"].startswith("http://127.0.0.1:3000/d/slamon-")
        valueless = a.name in ("SlamonServiceDown", "SlamonWorkerDown") or "absent(" in a.expr
        assert valueless or "{{ $value" in a.summary, a.name
        assert (ROOT / "docs" / "runbooks" / f"{a.name}.md").exists(), a.name
        names.add(a.name)
    assert names == set(ALERTS)


def test_imminent_items_never_page_by_default(contracts):
    groups = plan(contracts)
    assert not [a for a in all_alerts(groups) if a.name == "SlamonBreachImminent" and a.severity == "page"]
    ticket = _alert(groups, "SlamonBreachImminent", "globex-bank", "fraud-resolution", "ticket")
    assert "priority" not in ticket.expr.split("(", 2)[2]  # no priority matcher: every item, with or without one
    assert ticket.expr.startswith("sum by (client, sla, priority) (")  # one alert per priority, with the count


def test_imminent_breach_pages_for_the_configured_priorities(contracts):
    groups = plan(contracts, parse_alerting("imminent: {page_priorities: [P1]}", env={}))
    page = _alert(groups, "SlamonBreachImminent", "globex-bank", "fraud-resolution", "page")
    assert 'within="30m", priority=~"P1"' in page.expr
    ticket = _alert(groups, "SlamonBreachImminent", "globex-bank", "fraud-resolution", "ticket")
    assert 'priority!~"P1"' in ticket.expr  # also matches series without a priority label
    stage = _alert(groups, "SlamonItemsInLastStage", "globex-bank", "fraud-resolution")
    assert 'stage="0.9"' in stage.expr
    stage = _alert(groups, "SlamonItemsInLastStage", "acme-retail", "first-response")
    assert 'stage="0.95"' in stage.expr


def test_items_at_risk_take_the_stage_that_leaves_the_configured_share(contracts):
    from alerts.rules import at_risk_stage

    assert at_risk_stage((0.5, 0.75, 0.9), 0.25) == 0.75
    assert at_risk_stage((0.5, 0.8, 0.95), 0.25) == 0.5  # 0.8 would leave only 20 %
    assert at_risk_stage((0.6, 0.85), 0.25) == 0.6
    assert at_risk_stage((0.8, 0.9), 0.25) is None
    groups = plan(contracts)
    acme = _alert(groups, "SlamonItemsAtRisk", "acme-retail", "first-response")
    assert acme.severity == "ticket" and acme.for_s == 0
    assert acme.expr.startswith("sum by (client, sla) (slamon_sla_at_risk_items{")
    assert r'stage=~"0\\.5|0\\.8|0\\.95"' in acme.expr  # the stage and every later one
    globex = _alert(groups, "SlamonItemsAtRisk", "globex-bank", "fraud-resolution")
    assert r'stage=~"0\\.5|0\\.75|0\\.9"' in globex.expr  # 0.75 would leave 25 %, under the default 30 %
    late = plan(parse_contracts("""
clients:
  late:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, target: {P1: 1h}, objective: 0.9, stages: [0.8, 0.9]}
"""))
    assert not [a for a in all_alerts(late) if a.name == "SlamonItemsAtRisk"]
    assert any("SlamonItemsAtRisk: no stage" in n for g in late for n in g.notes)


def test_projection_budget_penalty_and_calls(contracts):
    groups = plan(contracts)
    proj = _alert(groups, "SlamonProjectedBreach", "acme-retail", "first-response")
    assert proj.expr.startswith(
        'min by (client, sla) (slamon_sla_projected_ratio{client="acme-retail", sla="first-response"}) < 0.95')
    assert "slamon_sla_period_decided" in proj.expr and proj.for_s == 3600
    assert _alert(groups, "SlamonProjectedBreach", "acme-retail", "abandon-rate").expr.startswith(
        'max by (client, sla) (slamon_sla_projected_ratio{client="acme-retail", sla="abandon-rate"}) > 0.05')
    assert _alert(groups, "SlamonProjectedBreach", "acme-retail", "asa").expr.startswith(
        'max by (client, sla) (slamon_sla_projected_seconds{client="acme-retail", sla="asa"}) > 30')
    assert _alert(groups, "SlamonProjectedBreach", "zenith-health", "csat-mean").expr.startswith(
        'min by (client, sla) (slamon_sla_projected_score{client="zenith-health", sla="csat-mean"}) < 4.2')
    assert "slamon_sla_error_budget_remaining_ratio" in _alert(
        groups, "SlamonErrorBudgetExhausted", "acme-retail", "aht").expr
    assert not [a for a in all_alerts(groups) if a.name == "SlamonErrorBudgetExhausted" and a.sla == "csat-mean"]
    pen = _alert(groups, "SlamonPenaltyExposure", "globex-bank", "fraud-resolution")
    assert pen.expr.startswith('max by (client, sla) (slamon_penalty_projected_credit_ratio{client="globex-bank", '
                               'sla="fraud-resolution"}) > 0')
    assert not [a for a in all_alerts(groups) if a.name == "SlamonPenaltyExposure" and a.sla == "first-response"
                and a.client == "globex-bank"]  # no penalty in that contract
    wait = _alert(groups, "SlamonCallLongestWait", "acme-retail", "phone-service-level")
    assert 'queue=~"orders|returns"' in wait.expr and wait.expr.endswith("> 60")  # 3 x 20 s
    sl = _alert(groups, "SlamonCallServiceLevelLow", "acme-retail", "phone-service-level")
    assert "increase30m" in sl.expr and ") < 0.8" in sl.expr and ">= 20" in sl.expr
    spike = _alert(groups, "SlamonAbandonRateSpike", "acme-retail", "abandon-rate")
    assert "> 0.1" in spike.expr


def test_uptime_and_pipeline(contracts, example_alerting):
    groups = plan(contracts, example_alerting)
    missing = _alert(groups, "SlamonProbeDataMissing", "globex-bank", "online-banking-uptime")
    assert missing.expr.endswith("> 90")  # 3 x the contract's 30 s probe interval
    down = _alert(groups, "SlamonServiceDown", "globex-bank", "online-banking-uptime")
    assert down.severity == "ticket"  # severity override in examples/alerting.yaml
    assert _alert(groups, "SlamonServiceDown", "globex-bank", "ivr-uptime").severity == "page"
    no_events = _alert(groups, "SlamonNoEvents", "zenith-health", "all")
    assert no_events.expr.endswith("> 14400")  # per-client override: 240 minutes
    assert _alert(groups, "SlamonWorkerDown", "all", "pipeline").expr == 'up{job="slamon"} == 0'
    assert _alert(groups, "SlamonWorkersAbsent", "all", "pipeline").expr == 'absent(up{job="slamon"})'
    zen = [a for a in all_alerts(groups) if a.client == "zenith-health" and a.name == "SlamonErrorBudgetBurn"
           and a.severity == "ticket"]
    assert zen and all("ticket-slow" not in [t.name for t in a.ratio.tiers] for a in zen)


def test_disable_and_severity_overrides(contracts):
    alerting = parse_alerting("""
disable: [SlamonPenaltyCreditAccrued]
severity: {SlamonProjectedBreach: info}
slas:
  acme-retail/*: {disable: [SlamonItemsInLastStage]}
""", env={})
    groups = plan(contracts, alerting)
    names = {(a.name, a.client) for a in all_alerts(groups)}
    assert not any(n == "SlamonPenaltyCreditAccrued" for n, _ in names)
    assert ("SlamonItemsInLastStage", "acme-retail") not in names
    assert ("SlamonItemsInLastStage", "globex-bank") in names
    assert {a.severity for a in all_alerts(groups) if a.name == "SlamonProjectedBreach"} == {"info"}


def test_generation_is_pure_and_deterministic(contracts, tmp_path):
    assert rule_files(contracts) == rule_files(contracts)
    a = write_rules(tmp_path / "a", contracts)
    b = write_rules(tmp_path / "b", contracts)
    assert [p.read_text() for p in a] == [p.read_text() for p in b]
    assert sorted(p.name for p in a) == ["slamon-acme-retail.rules.yml", "slamon-globex-bank.rules.yml",
                                         "slamon-pipeline.rules.yml", "slamon-zenith-health.rules.yml"]
    doc = yaml.safe_load(a[0].read_text())
    assert doc["groups"][0]["name"] == "slamon:acme-retail:first-response"


def test_label_values_are_escaped():
    c = parse_contracts("""
clients:
  'we"ird\\client':
    timezone: UTC
    slas:
      - {name: 'a.b', kind: accuracy, target: 0.99}
""")
    alert = next(a for a in all_alerts(plan(c)) if a.name == "SlamonProjectedBreach")
    assert 'client="we\\"ird\\\\client"' in alert.expr


# --- the alerting config ----------------------------------------------------------------------------------


def test_example_alerting_config_loads(example_alerting):
    assert example_alerting.routing.pipeline == "platform"
    assert example_alerting.receivers["page"].pagerduty[0].routing_key_file == "/run/secrets/pagerduty_routing_key"
    env = load_alerting(ROOT / "examples" / "alerting.yaml",
                        env={"SLAMON_PAGERDUTY_ROUTING_KEY_FILE": "/vault/pd"})
    assert env.receivers["page"].pagerduty[0].routing_key_file == "/vault/pd"


def test_config_errors_are_explained():
    with pytest.raises(AlertingError, match="SLAMON_X is not set"):
        parse_alerting("runbook_base_url: ${SLAMON_X}", env={})
    with pytest.raises(AlertingError, match="routing_key"):  # raw secrets are not accepted
        parse_alerting("receivers: {page: {pagerduty: {routing_key: abc}}}", env={})
    with pytest.raises(AlertingError, match="client/sla"):
        parse_alerting("slas: {acme: {min_volume: 3}}", env={})
    with pytest.raises(AlertingError, match=r"imminent\.within"):
        parse_alerting("imminent: {within: 45m}", env={})
    assert parse_alerting("alerting:\n  burn_rate: {min_volume: 7}", env={}).burn_rate.min_volume == 7


# --- alertmanager.yml -------------------------------------------------------------------------------------


def test_alertmanager_routes_and_inhibition(example_alerting):
    cfg = alertmanager_config(example_alerting, env={})
    route = cfg["route"]
    assert route["receiver"] == "ticket" and route["group_by"] == ["alertname", "client", "sla"]
    first = route["routes"][0]
    assert first["matchers"] == ['severity="critical"'] and first["receiver"] == "page" and first["continue"]
    # the platform route comes before every client route: a client's data-missing alert is the platform's
    assert route["routes"][1] == {"receiver": "platform", "matchers": ['category=~"pipeline|worker|data_missing"']}
    assert first["group_wait"] == "10s"
    quick = parse_alerting("routing: {page_group_wait: 2s}", env={})
    assert alertmanager_config(quick, env={})["route"]["routes"][0]["group_wait"] == "2s"
    assert {"receiver": "globex-account-team", "matchers": ['client="globex-bank"', 'severity="warning"']} \
        in route["routes"]
    inhibit = cfg["inhibit_rules"]
    assert inhibit[0] == {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                          "equal": ["alertname", "client", "sla"]}
    assert inhibit[1] == {"source_matchers": ['category="worker"'],
                          "target_matchers": ['category="data_missing"']}


def test_severity_mapping_static_labels_and_links_are_settings(contracts):
    alerting = parse_alerting("""
severity_labels: {page: P1-page, ticket: P3-ticket}
labels: {team: billing, env: staging}
runbook_base_url: https://wiki.example.com/runbooks/
dashboard_base_url: https://grafana.example.com/
""", env={})
    assert alerting.severity_labels == {"page": "P1-page", "ticket": "P3-ticket", "info": "info"}
    groups = plan(contracts, alerting)
    burn = _alert(groups, "SlamonErrorBudgetBurn", "acme-retail", "first-response", "page", "1h")
    assert burn.labels == {"severity": "P1-page", "client": "acme-retail", "sla": "first-response",
                           "category": "burn_rate", "long_window": "1h", "short_window": "5m",
                           "env": "staging", "team": "billing"}
    assert burn.annotations["runbook_url"] == "https://wiki.example.com/runbooks/SlamonErrorBudgetBurn.md"
    assert burn.annotations["dashboard_url"] == (
        "https://grafana.example.com/d/slamon-client?var-client=acme-retail&var-sla=first-response")
    worker = _alert(groups, "SlamonWorkerDown", "all", "pipeline")
    assert worker.labels["severity"] == "P1-page" and worker.labels["team"] == "billing"
    assert worker.annotations["dashboard_url"] == "https://grafana.example.com/d/slamon-pipeline"
    routes = alertmanager_config(alerting, env={})["route"]["routes"]
    assert routes[0]["matchers"] == ['severity="P1-page"'] and routes[-1]["matchers"] == ['severity="info"']
    assert alerting.severity_level("P1-page") == "page" and alerting.severity_level("warning") == "warning"
    with pytest.raises(AlertingError, match="distinct"):
        parse_alerting("severity_labels: {page: warning}", env={})
    with pytest.raises(AlertingError, match="reserved"):
        parse_alerting("labels: {severity: high}", env={})
    with pytest.raises(AlertingError, match="label name"):
        parse_alerting("labels: {team-name: x}", env={})


def test_no_sla_alert_keeps_the_worker_instance(contracts):
    """An SLA's alert keeps its identity when its partition moves to another worker: every SLA-scoped
    expression aggregates by its own labels (or reads recorded series that have no instance)."""
    import re

    for a in all_alerts(plan(contracts)):
        if a.name == "SlamonWorkerDown":
            assert "instance" in a.keep  # the worker is the subject of that alert
            continue
        assert "instance" not in a.keep, a.name
        bare = re.findall(r"(?:^|[\s(])(slamon_[a-z_]+)\{[^}]*\} *[<>=!]", a.expr.split("and on")[0])
        assert not bare, (a.name, a.client, a.sla, a.expr)


def test_dashboard_uids_match_the_dashboards():
    from alerts.dashboards import dashboards
    from alerts.rules import CLIENT_DASHBOARD, PIPELINE_DASHBOARD

    uids = {d.uid for d in dashboards()}
    assert {CLIENT_DASHBOARD, PIPELINE_DASHBOARD} <= uids


def test_alertmanager_never_contains_secrets(tmp_path, example_alerting):
    path = tmp_path / "am.yml"
    write_alertmanager(path, example_alerting, env={})
    text = path.read_text()
    for key in ("routing_key:", "api_url:", "auth_password:", "service_key:", "credentials:", "api_key:"):
        assert key not in text
    assert "routing_key_file: /run/secrets/pagerduty_routing_key" in text
    assert "credentials_file: /run/secrets/platform_webhook_token" in text


def test_receivers_from_environment_and_missing_ones_warn():
    env = {"SLAMON_PAGERDUTY_ROUTING_KEY_FILE": "/s/pd", "SLAMON_SLACK_API_URL_FILE": "/s/slack",
           "SLAMON_SLACK_CHANNEL": "#ops", "SLAMON_WEBHOOK_URL": "http://relay:8080/x"}
    assert set(receivers_from_env(env)) == {"page", "ticket", "platform"}
    warnings: list[str] = []
    cfg = alertmanager_config(Alerting(), env=env, warnings=warnings)
    names = [r["name"] for r in cfg["receivers"]]
    assert names[:2] == ["page", "ticket"] and warnings == []
    warnings = []
    alertmanager_config(Alerting(), env={}, warnings=warnings)
    assert len(warnings) == 2  # page and ticket receivers undefined: dropped, and said so


def test_rules_only_read_metrics_the_workers_export(contracts):
    """The names in streams/metrics.py are the contract: every slamon_* series a rule reads exists there."""
    import re

    from streams.metrics import exported_sla_names

    exported = set(exported_sla_names())
    used = set()
    for content in rule_files(contracts).values():
        for group in content["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"(?<![:\w])(slamon_[a-z_]+)\b", rule["expr"]))
    assert used and used <= exported, sorted(used - exported)
