"""Every panel query of every generated dashboard returns data from a real Prometheus.

A small HTTP server in the test serves the real exposition of `streams.metrics.EngineCollector` over a
`PartitionEngine` fed six hours of realistic generated traffic (monitor.simulation.generator) for two clients of
examples/contracts.yaml, plus a few hand-made events (a P1 ticket about to breach, a caller waiting, a
service that went down and came back). Prometheus (tests/support/procs.py) scrapes it every second with
the generated recording AND alerting rules loaded (the on-call dashboard reads ALERTS). Once the data is
there, each PromQL target of each panel runs with its template variables substituted, instant and as a range
(the SQL of the SLA record's panel runs on PostgreSQL: tests/integration/test_dashboard_breaches_pg.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import start_http_server

from alerts.dashboards import BUILTIN_VARS, all_panels, dashboards, prometheus_targets, used_variables
from alerts.rules import HEADER, dump_yaml, rule_files
from monitor.contracts import load_contracts
from monitor.simulation.generator import GeneratorConfig, generate
from streams.metrics import EngineCollector
from streams.partition_engine import PartitionEngine
from streams.state_records import changed_records
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

CLIENTS = ("acme-retail", "globex-bank")
SUBSTITUTE = {"client": "|".join(CLIENTS), "sla": ".+", "job": "slamon", "__rate_interval": "15s",
              "__interval": "1s", "__range": "1m", "__range_s": "60"}
HOUR_US = 3600 * 1_000_000


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _events(now: datetime) -> list[dict]:
    contracts = load_contracts("examples/contracts.yaml")
    two = contracts.model_copy(update={"clients": {c: contracts.clients[c] for c in CLIENTS}})
    end_us = int(now.timestamp() * 1_000_000)
    cfg = GeneratorConfig(start_us=end_us - 6 * HOUR_US, duration_us=6 * HOUR_US - 120_000_000, seed=7,
                          tickets_per_hour=40, calls_per_hour=120, ticket_breach_rate=0.1)
    out = list(generate(two, cfg))
    ids = itertools.count()

    def ev(kind: str, at: datetime, client: str, **fields) -> dict:
        return {"event_id": f"test-{next(ids)}", "kind": kind, "client": client, "ts": _iso(at), **fields}

    t = now - timedelta(seconds=30)
    out += [
        # globex P1 (15 min first response, calendar time) created 10 min ago: breaching within 15 min
        ev("ticket", now - timedelta(minutes=10), "globex-bank", ticket_id="hot-1", type="created",
           priority="P1", queue="fraud"),
        ev("call", now - timedelta(minutes=3), "acme-retail", call_id="wait-1", queue="orders", type="offered"),
        ev("probe", now - timedelta(minutes=20), "globex-bank", service="ivr", status="down"),
        ev("probe", now - timedelta(minutes=19), "globex-bank", service="ivr", status="up"),
        ev("probe", t, "globex-bank", service="ivr", status="up"),
        ev("probe", t, "globex-bank", service="online-banking", status="up"),
        ev("survey", t, "acme-retail", score=5),
    ]
    out.append({"event_id": "broken", "kind": "ticket"})  # a dead letter
    return out


@pytest.fixture
def slamon_target():
    contracts = load_contracts("examples/contracts.yaml")
    pe = PartitionEngine(0, contracts)
    now = datetime.now(UTC).replace(microsecond=0)
    for offset, event in enumerate(_events(now)):
        pe.process(orjson.dumps(event), offset)
    pe.checkpoint_wall = time.time()
    pe.checkpoint_bytes = sum(len(k) + len(v or b'') for k, v in changed_records(pe))
    lock = threading.Lock()

    def holders():
        with lock:
            return [pe]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(holders, consumer_lag=lambda partition: 0))
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    # keep the counters moving a little, as a live worker would
    stop = threading.Event()

    def feed():
        n = 0
        while not stop.wait(1.0):
            at = datetime.now(UTC)
            event = {"event_id": f"live-{n}", "kind": "survey", "client": "acme-retail", "ts": _iso(at),
                     "score": 5 if n % 3 else 2}
            with lock:
                pe.process(orjson.dumps(event), 10_000_000 + n)
            n += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    yield f"127.0.0.1:{port}"
    stop.set()
    feeder.join(5)
    server.shutdown()
    server.server_close()


def _config(target: str) -> str:
    return ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: slamon\n    static_configs:\n"
            f"      - targets: ['{target}']\n")


def _substitute(expr: str) -> str:
    for name in sorted(SUBSTITUTE, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", SUBSTITUTE[name]).replace("$" + name, SUBSTITUTE[name])
    return expr


def test_substitution_covers_every_variable():
    for d in dashboards():
        j = d.to_json()
        for p in all_panels(j):
            for t in prometheus_targets(p):
                assert not used_variables(_substitute(t["expr"])), t["expr"]
                assert used_variables(t["expr"]) <= set(SUBSTITUTE) | BUILTIN_VARS


def test_every_panel_query_returns_data(slamon_target, prometheus_factory):
    from alerts.config import load_alerting

    contracts = load_contracts("examples/contracts.yaml")
    alerting = load_alerting("examples/alerting.yaml", env={})  # with its per-SLA tier overrides
    files = {name: HEADER + dump_yaml(content) for name, content in rule_files(contracts, alerting).items()}
    prom = prometheus_factory(config_text=_config(slamon_target), rule_files=files)
    prom.wait_for('up{job="slamon"} == 1', timeout=30)
    prom.wait_for("slamon_sla_info", lambda r: {s["metric"]["client"] for s in r} >= set(CLIENTS))
    # recording rules evaluated over at least two scrapes, and some alert pending or firing
    prom.wait_for("client_sla:slamon_sla_decided:increase5m", timeout=30)
    prom.wait_for('ALERTS{alertname=~"Slamon.+"}', timeout=30)

    queries = []
    for d in dashboards():
        j = d.to_json()
        for p in all_panels(j):
            for t in prometheus_targets(p):
                queries.append((j["uid"], p["title"], t["refId"], _substitute(t["expr"]), t["instant"]))
        for v in j["templating"]["list"]:
            if v["type"] == "query":
                label = v["query"]["query"]
                queries.append((j["uid"], f"variable {v['name']}", "-", label, True))
    assert len(queries) > 50

    # a panel coloured by band queries (one query per colour, `colors=` in alerts.dashboards: e.g. below / near /
    # at the SLA's target) shows each series in exactly one band: each band query must run, and the panel as a
    # whole must show data, not every band
    banded = {(d.uid, p["title"]) for d in dashboards() for p in all_panels(d.to_json())
              if any(o["matcher"]["id"] == "byFrameRefID" and any(pr["id"] == "color" for pr in o["properties"])
                     for o in p.get("fieldConfig", {}).get("overrides", []))}
    assert banded, "no band panels: the floor's service level and uptime are coloured by their targets"
    band_seen: set[tuple[str, str]] = set()

    empty: list[str] = []
    deadline = time.monotonic() + 40
    pending = queries
    while pending and time.monotonic() < deadline:
        empty, still = [], []
        now = time.time()
        for uid, title, ref, expr, instant in pending:
            if (uid, title) in band_seen:
                continue
            if expr.startswith("label_values("):
                inner = expr[len("label_values("):-1]
                selector, label = inner.rsplit(",", 1) if "," in inner else ("", inner)
                values = prom.api(f"label/{label.strip()}/values",
                                  **({"match[]": _substitute(selector.strip())} if selector else {}))
                ok = set(CLIENTS) <= set(values) if label.strip() == "client" else bool(values)
            else:
                ok = bool(prom.query(expr))
                if ok and not instant:
                    ok = bool(prom.query_range(expr, now - 10, now, 1))
            if ok and (uid, title) in banded:
                band_seen.add((uid, title))
            if not ok:
                still.append((uid, title, ref, expr, instant))
        pending = [q for q in still if (q[0], q[1]) not in band_seen]
        empty = [f"{uid} / {title} [{ref}]: {expr}" for uid, title, ref, expr, _ in pending]
        if pending:
            time.sleep(1)
    assert not empty, "panel queries without data:\n" + "\n".join(empty)
    _factor_lines_equal_the_rules(prom, files=rule_files(contracts, alerting))


def _factor_lines_equal_the_rules(prom, files: dict) -> None:
    """The on-call burn panels' factor lines (the rules' recorded factor per SLA and tier) equal the factors of
    the generated SlamonErrorBudgetBurn alerts, SLA by SLA and tier by tier, dropped and switched-off tiers
    included (examples/alerting.yaml switches zenith-health's ticket-slow off)."""
    from alerts.config import default_windows
    from alerts.dashboards import C, burn_factor
    from alerts.rules import prom_duration

    expected = {}
    for content in files.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                labels = rule.get("labels", {})
                if rule.get("alert") == "SlamonErrorBudgetBurn" and labels["client"] in CLIENTS:
                    factor = float(rule["expr"].split("\n", 1)[0].rsplit(">", 1)[1])
                    expected[(labels["client"], labels["sla"], labels["long_window"])] = factor
    got = {}
    for tier in default_windows().tiers:
        for s in prom.query(_substitute(burn_factor(tier, C))):
            got[(s["metric"]["client"], s["metric"]["sla"], prom_duration(tier.long_window))] = float(s["value"][1])
    assert expected and set(got) == set(expected), (sorted(set(got) ^ set(expected)))
    assert any(k[2] == "3d" for k in got) and not any(k[0] == "zenith-health" and k[2] == "3d" for k in got)
    for key, factor in expected.items():
        assert got[key] == pytest.approx(factor, rel=1e-9), key
