"""`slamon backtest`: the generated rules evaluated by real Prometheus over a generated history with injected
incidents (a staffing drop, an outage). The scoring pieces are checked on small hand-made data first."""

from __future__ import annotations

import os
import re
from datetime import datetime

import orjson
import pytest

from alerts.backtest.evaluation import families_read, recording_layers, run_backtest
from alerts.backtest.scoring import Breach, BreachTracker, Episode, Settings, episodes_from_series, score
from alerts.config import parse_alerting
from alerts.rules import rule_files
from monitor.contracts import parse_contracts
from monitor.events import to_us
from monitor.simulation.generator import HOUR_US, GeneratorConfig, Scenario, generate
from streams.metrics import exported_sla_names

CONTRACT = """
clients:
  acme:
    timezone: UTC
    slas:
      - {name: sl, kind: service_level, target: 0.8, within: 20s, period: week, queues: [phone]}
      - {name: abandon, kind: abandon_rate, target: 0.08, queues: [phone], period: week}
      - {name: portal, kind: uptime, service: portal, target: 0.99, probe_interval: 300s, period: week}
"""
# Both configs keep only the burn-rate alert and SlamonServiceDown (the comparison isolates their
# thresholds) and switch off the 1d/3d tiers (their long windows make the rule backfill slow).
OTHERS = """
disable: [SlamonBreachImminent, SlamonItemsInLastStage, SlamonProjectedBreach, SlamonErrorBudgetExhausted,
          SlamonPenaltyExposure, SlamonPenaltyCreditAccrued, SlamonCallServiceLevelLow, SlamonCallLongestWait,
          SlamonAbandonRateSpike, SlamonDowntimeBudgetLow, SlamonProbeDataMissing, SlamonProbeDataAbsent,
          SlamonNoEvents, SlamonClientDataAbsent, SlamonDeadLettersRising, SlamonConsumerLagHigh,
          SlamonCheckpointStale, SlamonWorkerDown, SlamonWorkersAbsent]
"""
LENIENT = """
burn_rate:
  min_volume: 20
  tiers: {page-fast: {factor: 60}, page-slow: {factor: 60}, ticket-fast: off, ticket-slow: off}
uptime: {down_for: 45m}
""" + OTHERS
STRICT = """
burn_rate:
  min_volume: 10
  tiers: {page-fast: {factor: 1.5}, page-slow: {factor: 1.5}, ticket-fast: off, ticket-slow: off}
uptime: {down_for: 2m}
""" + OTHERS

DROP = ("2026-11-02T13:00:00Z", 2)  # staffing drop on the phone queue: start, hours
OUTAGE = ("2026-11-03T14:00:00Z", 2)  # the portal is down: start, hours


def _us(text: str) -> int:
    return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _s(text: str) -> float:
    return _us(text) / 1e6


# --- the pieces, on hand-made data -----------------------------------------------------------------------

def test_an_alert_fires_once_its_expression_held_for_the_for_duration():
    step = 60
    held = [1000 + i * step for i in range(10)]  # 10 evaluations in a row
    blip = [5000, 5060]  # two evaluations: shorter than `for`
    (e,) = episodes_from_series("A", "page", "burn_rate", "c", "s", 180, step, [held, blip])
    assert (e.pending_s, e.start_s, e.end_s) == (1000, 1180, 1540)
    assert episodes_from_series("A", "page", "burn_rate", "c", "s", 0, step, [blip])[0].start_s == 5000


def test_alerts_are_scored_against_the_breaches_they_announce():
    breach = Breach("c", "s", at_s=10_000, end_s=20_000)
    eps = [
        Episode("Early", "page", "burn_rate", "c", "s", 8_000, 8_200, 9_000),  # stopped 1000 s before: grace
        Episode("Gone", "page", "burn_rate", "c", "s", 1_000, 1_100, 1_200),  # cleared hours before
        Episode("During", "page", "burn_rate", "c", "s", 12_000, 12_100, 13_000),  # after the breach
        Episode("Other", "page", "burn_rate", "c", "t", 9_000, 9_100, 9_500),  # another SLA's alert
        Episode("Pipe", "page", "pipeline", "all", "all", 9_000, 9_100, 9_500),
    ]
    scored = score("x", 5, eps, [breach], horizon_s=86_400, grace_s=3_600)
    assert [e.outcome for e in eps] == ["true_positive", "false_alarm", "late", "false_alarm", "not_scored"]
    assert scored.detected == {0: (1_800, "Early/page")}
    summary = scored.summary()
    assert (summary["recall"], summary["false_alarms"], summary["precision"]) == (1.0, 2, 1 / 3)


def test_breaches_need_volume_merge_short_recoveries_and_restart_with_the_period():
    tracker = BreachTracker(Settings(min_volume=20, merge_gap_s=3600))
    key = ("c", "s")

    def at(t, met, decided, start=0.0):
        tracker.observe(t, {key: {"met": met, "decided": decided, "period_start": start}})

    at(0, 0, 5)  # missed, but too little volume
    at(60, 0, 25)  # breach
    at(120, 1, 26)
    at(1000, 0, 30)  # back within the merge gap: the same breach
    at(9000, 1, 40)
    at(20_000, 0, 50)  # a new breach after a long recovery
    at(30_000, 0, 25, start=25_000)  # a new period, still missed: a new breach
    assert [(b.at_s, b.end_s) for b in tracker.breaches] == [(60, 1000), (20_000, 20_000), (30_000, 30_000)]


def test_recording_rules_are_backfilled_in_dependency_layers():
    files = rule_files(parse_contracts(CONTRACT), parse_alerting(STRICT, "strict", env={}))
    layers = recording_layers(files)
    records = [[r["record"] for f in layer.values() for g in f["groups"] for r in g["rules"]] for layer in layers]
    assert len(layers) == 2
    assert records[0] and not any(r.startswith("client_sla:slamon_sla_burn_rate:") for r in records[0])
    assert records[1] and all(r.startswith("client_sla:slamon_sla_burn_rate:") for r in records[1])


# --- the real thing --------------------------------------------------------------------------------------

def _need_prometheus():
    from alerts.processes import which
    from alerts.prometheus_process import PROMTOOL_BIN, Prometheus

    why = Prometheus.missing() or (None if which(PROMTOOL_BIN) else f"{PROMTOOL_BIN} not found")
    if why:
        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{why} [SLAMON_REQUIRE_SERVICES is set]")
        pytest.skip(f"{why} (apt-get install prometheus; set SLAMON_REQUIRE_SERVICES=1 to make this an error)")


@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    _need_prometheus()
    contracts = parse_contracts(CONTRACT)
    cfg = GeneratorConfig(
        start_us=_us("2026-11-02T00:00:00Z"), duration_us=48 * HOUR_US, seed=5, calls_per_hour=40,
        scenarios=[Scenario("staffing_drop", "acme", _us(DROP[0]), DROP[1] * HOUR_US, 0.2, queue="phone"),
                   Scenario("outage", "acme", _us(OUTAGE[0]), OUTAGE[1] * HOUR_US, 0.0, service="portal")],
    )
    lines = [orjson.dumps(e) for e in generate(contracts, cfg)]
    work = tmp_path_factory.mktemp("backtest")
    configs = [("lenient", parse_alerting(LENIENT, "lenient", env={})),
               ("strict", parse_alerting(STRICT, "strict", env={}))]
    result = run_backtest(lines, contracts, configs, Settings(step_s=60), workdir=work)
    return result, work


@pytest.mark.integration
@pytest.mark.slow
def test_injected_incidents_are_found_with_the_expected_lead_times(backtest):
    result, _ = backtest
    h = result.history
    assert h.scrapes == 48 * 60 - 4  # every minute of event time after the first event
    by_sla = {b.sla: b for b in h.breaches}
    assert sorted(by_sla) == ["abandon", "portal", "sl"] and len(h.breaches) == 3
    drop_start, drop_end = _s(DROP[0]), _s(DROP[0]) + DROP[1] * 3600
    out_start = _s(OUTAGE[0])
    # the staffing drop breaks the call SLAs while it lasts; the outage spends the weekly downtime budget
    # (1 % of ~38 h of probes: ~23 min) within the first hour
    assert drop_start < by_sla["sl"].at_s < drop_end and drop_start < by_sla["abandon"].at_s < drop_end
    assert out_start + 15 * 60 < by_sla["portal"].at_s < out_start + 45 * 60
    strict = next(c for c in result.configs if c.name == "strict")
    # the history starts with the week (Monday 00:00): scored from its boundary, no warm-up needed
    assert all(t == _s("2026-11-02T00:00:00Z") for t in strict.scored_from.values())
    # the service level recovers before the week's data ends: a breach, but not a lost period
    lost = {p.sla: p for p in strict.lost}
    assert sorted(lost) == ["abandon", "portal"]
    # lost once the bad volume exceeds the observed period's whole error budget: at or after the breach began
    assert all(by_sla[k].at_s <= lost[k].lost_s <= lost[k].last_s for k in ("abandon", "portal"))
    leads = {strict.lost[i].sla: (lead, alert) for i, (lead, alert) in strict.detected.items()}
    assert set(leads) == {"abandon", "portal"} and set(strict.paged) == set(strict.detected)
    # the down probe comes within one 5-minute probe interval, the alert fires 2 minutes later
    lead, alert = leads["portal"]
    assert alert == "SlamonServiceDown/page" and 10 * 60 <= lead <= 30 * 60
    # the 1.5x burn rate over 1 h and 5 min pages during the drop (held 5 min, at least 10 bad items: a few
    # minutes after the breach began) and announces the loss: the abandon week is *lost* ~29 h later, when
    # its bad volume exceeds the week's whole budget, and an alert inside the breach it never recovered from
    # announces it (f1ae315, 4f02d96)
    lead, alert = leads["abandon"]
    burn = [e for e in strict.episodes if (e.sla, e.alert, e.severity) == ("abandon", "SlamonErrorBudgetBurn", "page")]
    assert alert == "SlamonErrorBudgetBurn/page" and burn and drop_start <= burn[0].start_s <= drop_end
    assert lead == lost["abandon"].lost_s - burn[0].start_s
    assert strict.summary()["burn_episodes"] >= 2 and strict.load()[0]["page"] == len(strict.episodes)


@pytest.mark.integration
@pytest.mark.slow
def test_a_stricter_threshold_increases_recall_and_false_alarms(backtest):
    result, _ = backtest
    lenient, strict = (c.summary() for c in result.configs)
    # one range query per distinct expression: the rules the configs share are asked once
    assert 0 < result.queries < sum(c.rules for c in result.configs)
    assert lenient["config"] == "lenient" and strict["config"] == "strict"
    assert strict["recall"] > lenient["recall"]
    assert strict["false_alarms"] >= lenient["false_alarms"]  # 0 and 0 since 4f02d96: in-breach alerts announce
    assert strict["alert_episodes"] > lenient["alert_episodes"]
    # the lenient config's alerts only fire once the breach has happened: late, never a detection
    assert lenient["true_positives"] == 0 and lenient["late"] >= 1 and lenient["recall"] == 0


@pytest.mark.integration
@pytest.mark.slow
def test_the_backfilled_series_are_the_live_ones(backtest):
    result, work = backtest
    texts = [f.read_text() for f in result.history.files]
    assert texts and all(f.parent == work / "history" for f in result.history.files)
    families = {name for text in texts for name in re.findall(r"^# TYPE (\S+) ", text, re.M)}
    exported = {n.removesuffix("_total") for n in exported_sla_names()}
    assert families - {"up"} <= exported
    # the families the rules of the two configs read, no others (never queried: not backfilled)
    contracts = parse_contracts(CONTRACT)
    read = families_read(rule_files(contracts, parse_alerting(text, name, env={}))
                         for text, name in ((LENIENT, "lenient"), (STRICT, "strict")))
    assert families == read | {"up"}
    assert {"slamon_sla_bad", "slamon_sla_decided", "slamon_uptime_service_up"} <= families
    assert all(text.endswith("# EOF\n") for text in texts)
