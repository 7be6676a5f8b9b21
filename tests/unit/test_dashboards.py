"""Dashboards as code (alerts.dashboards, on grafana-foundation-sdk): the model check on every generated
dashboard, the committed JSON is up to date, the SDK build matches the deployed Grafana, provisioning points at
the same datasource, and `grafana push` against a fake Grafana API."""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from alerts.dashboards import (
    BANDS,
    CURRENCY_UNITS,
    DATASOURCE_UID,
    STORE_DATASOURCE_UID,
    Row,
    all_panels,
    build,
    check_dashboard,
    dashboards,
    prometheus_targets,
    stat,
    target,
    used_variables,
    write_dashboards,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "grafana" / "dashboards"


@pytest.mark.parametrize("dashboard", dashboards(), ids=lambda d: d.uid)
def test_model_check(dashboard):
    j = dashboard.to_json()
    assert check_dashboard(j) == []
    assert j["schemaVersion"] == 39
    # beyond the checker: every panel sits inside the grid and none overlap
    cells = set()
    for p in all_panels(j):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps at {(x, y)}"
                cells.add((x, y))
        for t in p.get("targets", []):
            query = t.get("expr") or t["rawSql"]
            assert t["datasource"]["uid"] in ("${datasource}", "${store}") and query.strip()
            assert query.count("(") == query.count(")"), query
    variables = {v["name"]: v for v in j["templating"]["list"]}
    ds = variables["datasource"]
    assert j["templating"]["list"][0] is ds and ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert ds["current"]["value"] == DATASOURCE_UID
    assert "slamon-prometheus" not in json.dumps(j["panels"]), "a panel names the datasource instead of $datasource"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == "${datasource}"


def test_the_four_dashboards_and_what_they_show():
    by_uid = {d.uid: d.to_json() for d in dashboards()}
    assert set(by_uid) == {"slamon-floor", "slamon-client", "slamon-oncall", "slamon-pipeline"}
    exprs = {uid: " ".join(t["expr"] for p in all_panels(j) for t in prometheus_targets(p))
             for uid, j in by_uid.items()}
    for metric in ("slamon_service_level_ratio", "slamon_calls_waiting", "slamon_calls_longest_wait_seconds",
                   "slamon_sla_at_risk_items", "slamon_uptime_availability_ratio"):
        assert metric in exprs["slamon-floor"]
    floor = by_uid["slamon-floor"]
    assert floor["panels"][0]["type"] == "row" and floor["panels"][0]["repeat"] == "client"
    assert all(p["options"]["colorMode"] == "background" for p in all_panels(floor) if p["type"] == "stat")
    for metric in ("slamon_sla_compliance_ratio", "slamon_sla_target_ratio", "slamon_sla_error_budget_remaining",
                   "slamon_sla_projected_ratio", "slamon_penalty_projected_credit", "slamon_sla_bad_total"):
        assert metric in exprs["slamon-client"]
    assert "client" in {v["name"] for v in by_uid["slamon-client"]["templating"]["list"]}
    assert "ALERTS{" in exprs["slamon-oncall"] and "client_sla:slamon_sla_burn_rate:1h" in exprs["slamon-oncall"]
    for metric in ("slamon_consumer_lag_messages", "slamon_events_rejected_total", 'up{job="$job"}'):
        assert metric in exprs["slamon-pipeline"]


def test_checker_finds_problems():
    good = dashboards()[0].to_json()
    bad = copy.deepcopy(good)
    panels = [p for p in bad["panels"] if p["type"] != "row"]
    panels[1]["id"] = panels[0]["id"]
    panels[2]["gridPos"]["x"] = 20
    panels[2]["gridPos"]["w"] = 6
    panels[3]["targets"][0]["datasource"] = {}
    panels[6]["targets"][0]["datasource"] = {"type": "prometheus", "uid": "slamon-prometheus"}
    panels[4]["targets"][0]["expr"] = 'up{x="$nope"}'
    panels[5]["targets"][0]["expr"] = ""
    problems = "\n".join(check_dashboard(bad))
    assert "ids not unique" in problems
    assert "outside the 24-column grid" in problems
    assert "no datasource uid" in problems
    assert "is no datasource variable of its type" in problems
    assert "undefined variable $nope" in problems
    assert "has no expr" in problems
    del bad["schemaVersion"]
    assert any("schemaVersion" in p for p in check_dashboard(bad))


def test_layout_wraps_rows_and_refuses_oversized_panels():
    def dash(*widths: int) -> dict:
        panels = [stat(f"p{i}", target("up"), w=w, h=6) for i, w in enumerate(widths)]
        return build("x", "x", "", [Row("r", panels), Row("s", [stat("q", target("up"), w=24, h=3)])], [],
                     refresh="30s", time_from="now-1h").to_json()

    j = dash(16, 16)
    _row, a, b, row2, q = j["panels"]
    assert (a["gridPos"]["x"], b["gridPos"]["x"]) == (0, 0) and b["gridPos"]["y"] == a["gridPos"]["y"] + 6
    assert row2["gridPos"]["y"] == b["gridPos"]["y"] + 6 and q["gridPos"]["y"] == row2["gridPos"]["y"] + 1
    assert [p["id"] for p in j["panels"]] == [1, 2, 3, 4, 5] and check_dashboard(j) == []
    with pytest.raises(ValueError, match="w must be <= 24"):  # the SDK's own check
        dash(25)


def test_sdk_build_matches_the_deployed_grafana():
    """grafana-foundation-sdk ships one build per Grafana minor (version `<epoch>!<grafana version>`); a plain
    `pip install` picks whichever was uploaded last, so the pin must name the build of the Grafana we run."""
    sdk = importlib.metadata.version("grafana-foundation-sdk")
    image = re.search(r"image:\s*grafana/grafana:(\d+\.\d+)\.", (ROOT / "docker-compose.yml").read_text())
    assert image and sdk.split("!")[-1].startswith(image.group(1) + "."), (sdk, image and image.group(0))
    assert f'"grafana-foundation-sdk=={sdk}"' in (ROOT / "pyproject.toml").read_text()


def test_used_variables():
    assert used_variables('x{a=~"$client", b="${sla}"}[$__rate_interval]') == {"client", "sla", "__rate_interval"}


def test_committed_dashboards_are_current(tmp_path):
    written = write_dashboards(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in COMMITTED.glob("*.json")), \
        "regenerate: slamon dashboards -o deploy/grafana/dashboards"
    for p in written:
        assert json.loads(p.read_text()) == json.loads((COMMITTED / p.name).read_text()), \
            f"{p.name} is stale: slamon dashboards -o deploy/grafana/dashboards"


def test_provisioning_matches_the_dashboards():
    prov = ROOT / "deploy" / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == [DATASOURCE_UID]  # the $datasource variable's default
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = yaml.safe_load((prov / "dashboards" / "slamon.yaml").read_text())
    provider = dash["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]


# --- grafana push against a fake Grafana HTTP API ---------------------------------------------------------


class FakeGrafana:
    def __init__(self, folder_exists: bool = False) -> None:
        self.folders: dict[str, dict] = {"slamon": {"uid": "slamon"}} if folder_exists else {}
        self.dashboards: dict[str, dict] = {}
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                outer.auth.append(self.headers.get("Authorization", ""))
                uid = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/api/folders/") and uid in outer.folders:
                    return self._reply(200, outer.folders[uid])
                return self._reply(404, {"message": "not found"})

            def do_POST(self):
                outer.auth.append(self.headers.get("Authorization", ""))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/folders":
                    outer.folders[body["uid"]] = body
                    return self._reply(200, body)
                if self.path == "/api/dashboards/db":
                    uid = body["dashboard"]["uid"]
                    outer.dashboards[uid] = body
                    return self._reply(200, {"status": "success", "uid": uid, "url": f"/d/{uid}"})
                return self._reply(404, {"message": "not found"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("folder_exists", [False, True])
def test_grafana_push_creates_folder_and_dashboards(tmp_path, folder_exists):
    from alerts.grafana import push

    write_dashboards(tmp_path)
    fake = FakeGrafana(folder_exists)
    try:
        urls = push(fake.url, "s3cret-token", tmp_path)
    finally:
        fake.close()
    assert "slamon" in fake.folders
    assert set(fake.dashboards) == {"slamon-floor", "slamon-client", "slamon-oncall", "slamon-pipeline"}
    for body in fake.dashboards.values():
        assert body["folderUid"] == "slamon" and body["overwrite"] is True and "id" not in body["dashboard"]
    assert sorted(urls) == sorted(f"/d/{u}" for u in fake.dashboards)
    assert all(a == "Bearer s3cret-token" for a in fake.auth)


def test_cli_dashboards_and_grafana_push(tmp_path, capsys):
    from alerts.cli import add_parsers

    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(required=True))
    args = parser.parse_args(["dashboards", "-o", str(tmp_path / "d")])
    assert args.run(args) == 0 and len(list((tmp_path / "d").glob("*.json"))) == 4
    token = tmp_path / "token"
    token.write_text("tok\n")
    fake = FakeGrafana()
    try:
        args = parser.parse_args(["grafana", "push", "--url", fake.url, "--token-file", str(token),
                                  str(tmp_path / "d")])
        assert args.run(args) == 0
    finally:
        fake.close()
    assert len(fake.dashboards) == 4 and fake.auth[0] == "Bearer tok"
    args = parser.parse_args(["grafana", "push", "--url", "http://127.0.0.1:9", "--token-file",
                              str(tmp_path / "missing"), str(tmp_path / "d")])
    assert args.run(args) == 2
    assert "error:" in capsys.readouterr().err


def test_dashboards_only_read_metrics_that_exist():
    """slamon_* names come from streams/metrics.py, client_sla:* from the generated recording rules."""
    from alerts.rules import rule_files
    from monitor.contracts import load_contracts
    from streams.metrics import exported_sla_names

    recorded = {r["record"] for content in rule_files(load_contracts(ROOT / "examples" / "contracts.yaml")).values()
                for g in content["groups"] for r in g["rules"] if "record" in r}
    exported = set(exported_sla_names())
    for d in dashboards():
        for p in all_panels(d.to_json()):
            for t in prometheus_targets(p):
                for name in re.findall(r"(?<![:\w])(slamon_[a-z_]+)\b", t["expr"]):
                    assert name in exported, (d.uid, p["title"], name)
                for name in re.findall(r"\b(client_sla:[a-z_]+:[a-z0-9_]+)", t["expr"]):
                    assert name in recorded, (d.uid, p["title"], name)


def test_dashboards_only_use_label_names_of_the_conventions():
    """Metric names in alerts/dashboards.py are monitor.conventions constants; the label names written out in
    PromQL (by / on / group_left, selectors) and in legends ({{sla}}) must be conventions' label names too
    (or ALERTS' own labels)."""
    from monitor import conventions

    known = {v for k, v in vars(conventions).items() if k.isupper() and isinstance(v, str) and v.isidentifier()}
    known |= {"alertname", "alertstate", "severity"}  # ALERTS: Prometheus' labels and the rules' severity
    clause = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
    matcher = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
    used = set()
    for d in dashboards():
        j = d.to_json()
        texts = [(t["expr"], t["legendFormat"]) for p in all_panels(j) for t in prometheus_targets(p)]
        texts += [(v["query"]["query"], "") for v in j["templating"]["list"] if v["type"] == "query"]
        for expr, legend in texts:
            labels = {name.strip() for group in clause.findall(expr) for name in group.split(",") if name.strip()}
            labels |= set(matcher.findall(expr)) | set(re.findall(r"\{\{(\w+)\}\}", legend))
            labels |= set(re.findall(r"label_values\(.*,\s*(\w+)\)", expr))
            assert labels <= known, (d.uid, expr, legend, labels - known)
            used |= labels
    assert {"client", "sla", "window", "partition", "service"} <= used


# --- what follows the contracts ---------------------------------------------------------------------------


def _panel(uid: str, title: str) -> dict:
    j = next(d for d in dashboards() if d.uid == uid).to_json()
    return next(p for p in all_panels(j) if p["title"] == title)


def _overrides(panel: dict, matcher: str) -> dict[str, list[dict]]:
    return {o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"]["overrides"]
            if o["matcher"]["id"] == matcher}


def test_floor_colours_follow_each_slas_target():
    """No fixed 80 % / 99.9 % / 30-60 s: a query per colour band, bounds from the exported targets."""
    for title in ("Service level (30 min)", "Uptime (period)", "Longest wait"):
        p = _panel("slamon-floor", title)
        colours = {ref: props[0]["value"]["fixedColor"] for ref, props in _overrides(p, "byFrameRefID").items()}
        assert colours["A"] == "red" and colours["B"] == "orange" and colours["C"] == "green", title
        exprs = [t["expr"] for t in p["targets"]]
        target_metric = "slamon_sla_target_seconds" if title == "Longest wait" else "slamon_sla_target_ratio"
        assert all(target_metric in e for e in exprs), title
        assert not re.search(r"\b0\.[0-9]{2,}\b", " ".join(exprs)), "a fixed ratio in a target band"
    assert "unless" in _panel("slamon-floor", "Longest wait")["targets"][3]["expr"]  # no ASA SLA: blue
    on_target = _panel("slamon-floor", "SLAs on target")
    assert [o["properties"][0]["value"]["fixedColor"] for o in on_target["fieldConfig"]["overrides"]] == list(BANDS)
    assert all("slamon_penalty_projected_credit" in t["expr"] for t in on_target["targets"])


def test_credits_carry_the_contract_currency():
    from monitor.contracts import load_contracts

    contracts = load_contracts(ROOT / "examples" / "contracts.yaml")
    used = {s.penalty.currency for c in contracts.clients.values() for s in c.slas if s.penalty is not None}
    assert used and used <= set(CURRENCY_UNITS), f"currencies without a Grafana unit: {used - set(CURRENCY_UNITS)}"
    for uid, title in (("slamon-floor", "Projected credit"), ("slamon-client", "Projected credit"),
                       ("slamon-client", "Credit earned so far"), ("slamon-client", "Projected credit over time")):
        p = _panel(uid, title)
        assert all("group_left (currency)" in t["expr"] and "({{currency}})" in t["legendFormat"]
                   for t in p["targets"]), (uid, title)
        assert "unit" not in p["fieldConfig"]["defaults"], (uid, title)  # the currency decides
        units = {rx: props[0]["value"] for rx, props in _overrides(p, "byRegexp").items()}
        assert units["/\\(EUR\\)$/"] == "currencyEUR" and units["/\\(INR\\)$/"] == "currencyINR", (uid, title)


def test_burn_panels_draw_each_tier_and_its_factor():
    from alerts.config import default_windows

    tiers = default_windows().tiers
    j = next(d for d in dashboards() if d.uid == "slamon-oncall").to_json()
    panels = {p["title"]: p for p in all_panels(j)}
    for tier in tiers:
        p = next(p for t, p in panels.items() if t.startswith(f"{tier.name} ("))
        long_expr, short_expr, factor = (t["expr"] for t in p["targets"])
        assert long_expr.startswith("client_sla:slamon_sla_burn_rate:")
        assert short_expr.startswith("client_sla:slamon_sla_burn_rate:") and short_expr != long_expr
        assert factor == f'max by (client, sla) (client_sla:slamon_sla_burn_factor:tier{{client=~"$client", ' \
                         f'tier="{tier.name}"}})'  # as the rules record it per SLA
        assert p["targets"][2]["legendFormat"].endswith(" factor")
    gauge = panels["Time to budget exhaustion, soonest 10"]
    assert gauge["fieldConfig"]["defaults"]["unit"] == "s"
    steps = [s["value"] for s in gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 5 * 86400, 30 * 86400]  # page-slow's horizon (6h / 5 %), ticket-slow's (3d / 10 %)


def test_alert_table_links_runbooks_and_dashboards():
    p = _panel("slamon-oncall", "Alerts firing and pending")
    links = {name: props[0]["value"] for name, props in _overrides(p, "byName").items()}
    assert links["alertname"][0]["url"] == "${runbooks}/${__data.fields.alertname}.md"
    assert "/d/slamon-client?var-client=${__data.fields.client}&var-sla=${__data.fields.sla}" in links["sla"][0]["url"]
    assert links["sla"][1]["url"].startswith("/d/slamon-pipeline")
    j = next(d for d in dashboards() if d.uid == "slamon-oncall").to_json()
    runbooks = next(v for v in j["templating"]["list"] if v["name"] == "runbooks")
    assert runbooks["type"] == "textbox" and runbooks["query"] == "docs/runbooks"


def test_recent_breaches_panel_reads_the_store():
    p = _panel("slamon-client", "Recent breaches")
    (t,) = p["targets"]
    assert p["type"] == "table" and t["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "${store}"}
    assert t["format"] == "table" and "FROM sla_decisions" in t["rawSql"] and "bad > 0" in t["rawSql"]
    j = next(d for d in dashboards() if d.uid == "slamon-client").to_json()
    store = next(v for v in j["templating"]["list"] if v["name"] == "store")
    assert store["query"] == "grafana-postgresql-datasource" and store["current"]["value"] == STORE_DATASOURCE_UID
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/store.yaml").read_text())
    (ds,) = prov["datasources"]
    assert ds["uid"] == STORE_DATASOURCE_UID and ds["type"] == "grafana-postgresql-datasource"
    assert ds["secureJsonData"]["password"].startswith("$__file{/run/secrets/")
