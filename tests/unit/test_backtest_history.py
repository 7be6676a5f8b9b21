"""The backtest's history file (alerts.backtest.history): OpenMetrics with timestamps, grouped by family, that
prometheus_client's own OpenMetrics parser reads back with exactly the collector's families and values.

The file holds each family's samples scrape by scrape, so the series of a family interleave (promtool's backfill
reads that); the strict parser wants each series contiguous, so the test regroups the lines of each family by
series (a stable sort) before parsing."""

from __future__ import annotations

import orjson
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from alerts.backtest.history import scrape_history
from alerts.backtest.scoring import Settings
from monitor.contracts import load_contracts
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate
from streams.metrics import exported_sla_names

START_US = 1_793_577_600_000_000  # 2026-11-02T00:00:00Z


def test_the_history_is_openmetrics_of_the_collectors_series(tmp_path):
    contracts = load_contracts("examples/contracts.yaml")
    lines = [orjson.dumps(e) for e in generate(contracts, GeneratorConfig(start_us=START_US, duration_us=HOUR_US,
                                                                           seed=3))]
    out = tmp_path / "history"
    history = scrape_history(lines, contracts, out, Settings(step_s=300))
    assert history.events == len(lines)
    assert history.scrapes == (history.end_s - history.start_s) // 300 + 1  # every 5 min, from after the first event
    # the tickets the engine decided, from its SLA events: the item outcomes item warnings are scored against
    assert history.items and all(i.created_s <= i.closed_s and i.created_s < i.deadline_s for i in history.items)
    assert {i.sla for i in history.items} <= {s.name for c in contracts.clients.values() for s in c.slas
                                                if s.kind in ("first_response", "resolution")}
    assert all(i.breached == (i.closed_s >= i.deadline_s) for i in history.items if i.breached)
    assert history.periods and history.boundaries
    # one OpenMetrics file per 2-hour window (promtool's block), each a whole exposition
    assert history.files and all(f.parent == out and f.name.startswith("history-") for f in history.files)
    assert all(int(f.name.split("-")[1].split(".")[0]) % 7200 == 0 for f in history.files)
    by_name: dict = {}
    for path in history.files:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("# EOF\n")
        for f in text_string_to_metric_families(_series_grouped(text)):  # refuses interleaved families
            if f.name in by_name:
                by_name[f.name].samples += f.samples
            else:
                by_name[f.name] = f
    families = list(by_name.values())
    exported = {n.removesuffix("_total") for n in exported_sla_names()}
    assert set(by_name) - {"up"} <= exported
    assert {"slamon_sla_decided", "slamon_sla_met", "slamon_uptime_service_up"} <= set(by_name)
    samples = [s for f in families if f.name != "up" for s in f.samples]
    assert len(samples) == history.samples
    assert {float(s.timestamp) for s in by_name["up"].samples} == {float(s.timestamp) for s in samples}
    assert len(by_name["up"].samples) == history.scrapes
    assert all(s.labels == {"job": "slamon", "instance": "backtest:9108"} and s.value == 1
               for s in by_name["up"].samples)
    assert by_name["slamon_sla_decided"].type == "counter"
    assert all(s.name == "slamon_sla_decided_total" for s in by_name["slamon_sla_decided"].samples)


def _series_grouped(text: str) -> str:
    out: list[str] = []
    family: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#"):
            out += sorted(family, key=lambda sample: sample.rsplit(" ", 2)[0])  # stable: time order kept
            family = []
            out.append(line)
        else:
            family.append(line)
    return "".join(out)


def test_scraping_in_two_processes_gives_the_same_history(tmp_path):
    """The scrape split into stretches of whole windows (each process replays what comes before its stretch
    without scraping) writes the same files and sees the same breaches, periods and items."""
    contracts = load_contracts("examples/contracts.yaml")
    lines = [orjson.dumps(e) for e in generate(contracts, GeneratorConfig(start_us=START_US,
                                                                           duration_us=5 * HOUR_US, seed=4))]
    one = scrape_history(lines, contracts, tmp_path / "one", Settings(step_s=120), jobs=1)
    two = scrape_history(lines, contracts, tmp_path / "two", Settings(step_s=120), jobs=2)
    assert len(two.files) >= 3 and [f.name for f in one.files] == [f.name for f in two.files]
    assert all(_deterministic(a) == _deterministic(b) for a, b in zip(one.files, two.files, strict=True))
    assert (one.scrapes, one.samples, one.events) == (two.scrapes, two.samples, two.events)
    assert one.breaches == two.breaches and one.periods == two.periods and one.items == two.items
    assert one.burns == two.burns and one.boundaries == two.boundaries


def _deterministic(path) -> list[str]:
    """The file's lines but the collector's own (wall-clock) scrape duration."""
    return [line for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith("slamon_scrape_duration_seconds ")]


def test_families_the_rules_read_are_written_as_in_the_full_history(tmp_path):
    """`families=` (the backtest passes what its rules read): those families' lines are the full history's,
    the others are not written, and the breaches, periods and items the engine saw are the same."""
    from alerts.backtest.evaluation import families_read
    from alerts.config import load_alerting
    from alerts.rules import rule_files

    contracts = load_contracts("examples/contracts.yaml")
    lines = [orjson.dumps(e) for e in generate(contracts, GeneratorConfig(start_us=START_US,
                                                                           duration_us=3 * HOUR_US, seed=5))]
    wanted = families_read([rule_files(contracts, load_alerting(None))])
    assert wanted and "slamon_sla_latency_seconds" not in wanted and "slamon_sla_decided" in wanted
    full = scrape_history(lines, contracts, tmp_path / "full", Settings(step_s=300))
    lean = scrape_history(lines, contracts, tmp_path / "lean", Settings(step_s=300), families=wanted)
    assert [f.name for f in full.files] == [f.name for f in lean.files]
    for a, b in zip(full.files, lean.files, strict=True):
        kept = [line for line in _deterministic(a)
                if line.startswith("#") is False and line.split("{")[0].split(" ")[0].removesuffix("_total")
                in wanted | {"up"}]
        assert [line for line in _deterministic(b) if not line.startswith("#")] == kept
    assert 0 < lean.samples < full.samples
    assert full.breaches == lean.breaches and full.periods == lean.periods and full.items == lean.items
    assert full.burns == lean.burns and full.boundaries == lean.boundaries


def test_families_read_by_rules_go_by_sample_name_and_name_selectors_keep_all():
    from alerts.backtest.evaluation import families_read

    def files(*exprs):
        return {"f.yaml": {"groups": [{"name": "g", "rules": [{"record": f"r{i}", "expr": e}
                                                              for i, e in enumerate(exprs)]}]}}

    assert families_read([files('rate(slamon_sla_decided_total{client="a"}[5m])', "slamon_sla_met == 0")]) == \
        {"slamon_sla_decided", "slamon_sla_met"}
    assert families_read([files("slamon_sla_decided > 0")]) == frozenset()  # a counter's samples end in _total
    assert families_read([files("up"), files("slamon_calls_waiting")]) == {"slamon_calls_waiting"}
    assert families_read([files('{__name__=~"slamon_.*"}')]) is None
