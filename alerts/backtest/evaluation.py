"""The backtest run: the history backfilled into a TSDB once, the generated alerts evaluated by real Prometheus.

1. **Backfill.** `promtool tsdb create-blocks-from openmetrics` turns each 2-hour window of the scraped history
   into a TSDB block (`backfill_history`, two at a time).
2. **Alerts.** One Prometheus serves the blocks. Each generated alerting rule's `expr`, with the recording rules
   it reads inlined (`alerts.backtest.inline`: the same series Prometheus would record, computed at each
   evaluation instant), is one `query_range` at the rule evaluation interval (`Evaluator`; identical
   expressions of compared configs are asked once). The rule manager's pending -> firing -> resolved state
   machine with `for:` and `keep_firing_for:` is applied to the returned instants (`scoring.alert_spans`).
   Nothing of the alert logic is reimplemented: the conditions are the generated PromQL, evaluated by
   Prometheus. Episodes of one alert, level and SLA from several rules (a burn-rate rule per tier) are merged:
   one notification, as Alertmanager groups them. The `severity` label is mapped back to its level (page,
   ticket, info) through the config's `severity_labels`.
   `method="backfill"` keeps the former way (every recording rule backfilled by promtool, layer by layer,
   into a TSDB copy per config), for comparisons: slow on long histories.
3. **Score** each alert class against the outcome it predicts (`alerts.backtest.scoring`, alerts/README.md
   "How backtests score").
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from alerts.backtest import BacktestError
from alerts.backtest.history import History, scrape_history
from alerts.backtest.inline import Inliner
from alerts.backtest.progress import Progress
from alerts.backtest.scoring import (
    Episode,
    ItemSelection,
    Scored,
    Settings,
    episodes_from_series,
    iso,
    merge_episodes,
    score,
    scoring_start,
)
from alerts.prometheus_process import (
    PROMETHEUS_BIN,
    PROMTOOL_BIN,
    Prometheus,
    create_blocks_from_openmetrics,
    create_blocks_from_rules,
    move_blocks,
    require,
)

# a private Prometheus serving the backfilled TSDB: no scraping, no rules
SERVER_CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"


# --- the rules (pure) ---------------------------------------------------------------------------------------

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def families_read(rule_file_sets: Iterable[dict[str, dict]]) -> frozenset[str] | None:
    """The exported families whose series some rule (recording or alerting) of these rule files reads, by
    sample name (a counter's `_total`); None (every family) when an expression selects series by `__name__`.
    Any word of an expression that names a sample counts, so a label or function spelled like one only keeps
    a family in."""
    from streams.metrics import exported_families, family_spec

    words: set[str] = set()
    for files in rule_file_sets:
        for content in files.values():
            for group in content.get("groups", []):
                for rule in group.get("rules", []):
                    expr = str(rule.get("expr", ""))
                    if "__name__" in expr:
                        return None
                    words.update(_NAME.findall(expr))
    return frozenset(name for name in exported_families()
                     if (name + "_total" if family_spec(name)[0] == "counter" else name) in words)


def recording_layers(files: dict[str, dict]) -> list[dict[str, dict]]:
    """The recording rules of the rule files, split into layers so that a rule only reads rules of
    earlier layers (promtool backfills a layer from what Prometheus already serves)."""
    rules = [(name, gi, group, r) for name, content in files.items()
             for gi, group in enumerate(content.get("groups", [])) for r in group["rules"] if "record" in r]
    produced = {r["record"] for *_, r in rules}
    depth: dict[int, int] = {}

    def reads(expr: str) -> set[str]:
        return {p for p in produced if re.search(rf"(?<![\w:]){re.escape(p)}(?![\w:])", expr)}

    producers: dict[str, list[int]] = defaultdict(list)
    for i, (*_, r) in enumerate(rules):
        producers[r["record"]].append(i)
    pending = list(range(len(rules)))
    while pending:
        progressed = False
        for i in list(pending):
            needs = reads(rules[i][3]["expr"]) - {rules[i][3]["record"]}
            if all(all(j in depth for j in producers[n]) for n in needs):  # every producer placed
                depth[i] = 1 + max((depth[j] for n in needs for j in producers[n]), default=-1)
                pending.remove(i)
                progressed = True
        if not progressed:
            raise BacktestError("recording rules read each other in a cycle: "
                                + ", ".join(rules[i][3]["record"] for i in pending))
    layers: list[dict[str, dict]] = []
    for level in range(max(depth.values(), default=-1) + 1):
        files_out: dict[str, dict] = {}
        for i, (name, _, group, r) in enumerate(rules):
            if depth[i] != level:
                continue
            content = files_out.setdefault(name, {"groups": []})
            gname = f"{group['name']}:layer{level}"
            target = next((g for g in content["groups"] if g["name"] == gname), None)
            if target is None:
                target = {"name": gname, "rules": []}
                content["groups"].append(target)
            target["rules"].append(r)
        layers.append(files_out)
    return layers


def alerting_rules(files: dict[str, dict]) -> list[dict]:
    return [r for content in files.values() for group in content.get("groups", []) for r in group["rules"]
            if "alert" in r]


def parse_prom_duration(text: str | None) -> float:
    if not text:
        return 0.0
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                                  "y": 31536000}[unit]
    return total


# --- with Prometheus ----------------------------------------------------------------------------------------

def backfill_recording_rules(prom: Prometheus, files: dict[str, dict], workdir: Path, start_s: int,
                             end_s: int, step_s: int) -> int:
    """The former method, kept for comparisons (`--method backfill`): backfill every recording rule, layer by
    layer, into the server's TSDB (restarting it to load the new blocks). Returns the number of recording
    rules. Slow on long histories: promtool writes a block per 2 h of every layer."""
    layers = recording_layers(files)
    count = 0
    for level, layer in enumerate(layers):
        rules_dir = workdir / f"rules-layer{level}"
        out_dir = workdir / f"blocks-layer{level}"
        shutil.rmtree(rules_dir, ignore_errors=True)
        shutil.rmtree(out_dir, ignore_errors=True)
        rules_dir.mkdir(parents=True)
        out_dir.mkdir(parents=True)
        paths = []
        for name, content in layer.items():
            path = rules_dir / name
            path.write_text(yaml.safe_dump(content, sort_keys=False))
            paths.append(str(path))
            count += sum(len(g["rules"]) for g in content["groups"])
        create_blocks_from_rules(prom.url, paths, start_s, end_s, step_s, out_dir,
                                 f"promtool tsdb create-blocks-from rules (layer {level})")
        if move_blocks(out_dir, prom.data_dir):
            prom.restart()
    return count


def item_selections(contracts, alerting) -> dict[tuple, ItemSelection]:
    """(alert, client, sla, level) -> which items the generated item warning speaks of (from its expression)."""
    from alerts.rules import plan

    out: dict[tuple, ItemSelection] = {}
    for group in plan(contracts, alerting):
        for a in group.alerts:
            labels = dict(a.conds[0].labels) if a.conds else {}
            if a.name == "SlamonBreachImminent":
                m = re.search(r'priority(=~|!~)"([^"]*)"', a.expr)
                prios = tuple(p.replace("\\", "") for p in m.group(2).split("|") if p) if m else ()
                out[(a.name, a.client, a.sla, a.severity)] = ItemSelection(
                    within_s=parse_prom_duration(labels.get("within")),
                    priorities=prios if m and m.group(1) == "=~" else None,
                    exclude=prios if m and m.group(1) == "!~" else ())
            elif a.name in ("SlamonItemsAtRisk", "SlamonItemsInLastStage"):  # from the stage it starts at
                out[(a.name, a.client, a.sla, a.severity)] = ItemSelection(stage=float(labels["stage"]))
    return out


QUERY_THREADS = 2  # range queries in flight (Prometheus evaluates each on its own goroutines)


class Evaluator:
    """The alert expressions of one or more configs evaluated by one Prometheus over the shared history: one
    `query_range` per distinct (inlined) expression, the answers shared between configs (`--compare`)."""

    def __init__(self, prom: Prometheus, start_s: int, end_s: int, step_s: int) -> None:
        self.prom, self.start_s, self.end_s, self.step_s = prom, start_s, end_s, step_s
        self.answers: dict[str, list[tuple[dict, list[float]]]] = {}  # expr -> [(labels, instants returned)]
        self._types: dict[str, str] = {}
        self.queries = 0

    def result_type(self, expr: str) -> str:
        kind = self._types.get(expr)
        if kind is None:
            kind = self._types[expr] = self.prom.query_raw(expr, self.end_s)["resultType"]
        return kind

    def rules(self, files: dict[str, dict], inline: bool = True) -> list[dict]:
        """The alerting rules, with the recording rules inlined into their expressions (or as they are)."""
        if not inline:
            return alerting_rules(files)
        return Inliner(files, self.step_s, self.result_type).alerts(files)

    def run(self, exprs: Iterable[str], progress: Progress | None = None) -> None:
        """Answer every expression not answered yet."""
        todo = list(dict.fromkeys(e for e in exprs if e not in self.answers))
        if progress is not None:
            progress.total = len(todo)

        def one(expr: str) -> list[tuple[dict, list[float]]]:
            return [(s["metric"], [float(t) for t, _ in s["values"]])
                    for s in self.prom.query_range(expr, self.start_s, self.end_s, self.step_s)]

        with ThreadPoolExecutor(QUERY_THREADS) as pool:
            for done, (expr, answer) in enumerate(zip(todo, pool.map(one, todo), strict=True), 1):
                self.answers[expr] = answer
                self.queries += 1
                if progress is not None:
                    progress.update(done)

    def episodes(self, rules: list[dict], level=None) -> list[Episode]:
        """Episodes of every alerting rule (answered by `run`); `level` maps a `severity` label value to page |
        ticket | info."""
        episodes: list[Episode] = []
        for rule in rules:
            labels = rule.get("labels", {})
            severity = labels.get("severity", "")
            severity = level(severity) if level is not None else severity
            by_scope: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
            for metric, times in self.answers[rule["expr"]]:
                client = labels.get("client") or metric.get("client", "all")
                sla = labels.get("sla") or metric.get("sla", "all")
                by_scope[(client, sla)].append(times)
            for (client, sla), times in by_scope.items():
                episodes.extend(episodes_from_series(
                    rule["alert"], severity, labels.get("category", ""), client, sla,
                    parse_prom_duration(rule.get("for")), self.step_s, times,
                    keep_firing_for_s=parse_prom_duration(rule.get("keep_firing_for")), end_s=self.end_s))
        return merge_episodes(episodes, self.step_s)


def evaluate_alerts(prom: Prometheus, files: dict[str, dict], start_s: int, end_s: int,
                    step_s: int, level=None, inline: bool = True) -> tuple[int, list[Episode]]:
    """Episodes of every alerting rule of `files` (one config)."""
    ev = Evaluator(prom, start_s, end_s, step_s)
    rules = ev.rules(files, inline)
    ev.run(r["expr"] for r in rules)
    return len(rules), ev.episodes(rules, level)


# --- the whole run ------------------------------------------------------------------------------------------

@dataclass
class BacktestResult:
    history: History
    configs: list[Scored]
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds (this process, its children) per phase
    queries: int = 0  # range queries asked (identical expressions of compared configs once)

    def as_dict(self) -> dict:
        h = self.history
        return {
            "history": {"start": iso(h.start_s), "end": iso(h.end_s), "events": h.events, "scrapes": h.scrapes,
                        "samples": h.samples, "breaches": [asdict(b) | {"at": iso(b.at_s)} for b in h.breaches],
                        "lost_periods": [asdict(p) for p in h.periods if p.missed],
                        "burn_episodes": len(h.burns), "items": len(h.items)},
            "configs": [{"summary": c.summary(), "alerts": c.per_alert(), "slas": c.per_sla(), "load": c.load(),
                         "scored_from": {f"{k[0]}/{k[1]}": iso(v) for k, v in c.scored_from.items()},
                         "episodes": [asdict(e) | {"start": iso(e.start_s)} for e in c.episodes]}
                        for c in self.configs],
            "timings_seconds": self.timings,
            "cpu_seconds": self.cpu,
            "range_queries": self.queries,
        }


def _cpu() -> float:
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def backfill_history(files: list[Path], tsdb: Path, progress: Progress | None = None, jobs: int = 2) -> None:
    """`promtool tsdb create-blocks-from openmetrics` on every window file (one block each), `jobs` at a time.
    One file per 2-hour window keeps it linear: promtool reads its whole input once per block it writes."""
    tsdb.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.total = len(files)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for done, _ in enumerate(pool.map(lambda f: create_blocks_from_openmetrics(f, tsdb), files), 1):
            if progress is not None:
                progress.update(done)


def _prometheus(work: Path, data: Path, settings: Settings) -> Prometheus:
    return Prometheus(work, config_text=SERVER_CONFIG, data_dir=data, start_timeout=120.0, log_level="warn",
                      extra_args=[
                          "--storage.tsdb.retention.time=100y",
                          "--storage.tsdb.max-block-duration=2h",  # no compaction of the backfilled blocks
                          f"--query.lookback-delta={max(300, 2 * settings.step_s)}s",
                          "--query.timeout=10m",  # a 10,000-step chunk of a 3-day window on a loaded machine
                          "--query.max-samples=200000000"])


def run_backtest(lines: Iterable[bytes], contracts, configs: list[tuple[str, object]],
                 settings: Settings | None = None, workdir: Path | None = None,
                 progress: bool = False, jobs: int | None = None, method: str = "inline") -> BacktestResult:
    """Scrape the history once, backfill it once, then evaluate the rules generated for each (name, Alerting)
    config against one Prometheus (queries shared between configs).

    jobs: processes for the scrape and promtool (default: the CPUs, at most 2). method: "inline" (recording
    rules inlined into one range query per alert) or "backfill" (the former method: every recording rule
    backfilled by promtool, layer by layer, in a copy of the TSDB per config; slow, for comparisons)."""
    from alerts.rules import rule_files

    if method not in ("inline", "backfill"):
        raise BacktestError(f"unknown method {method!r} (inline, backfill)")
    settings = settings if settings is not None else Settings()
    jobs = jobs if jobs is not None else max(1, min(2, os.cpu_count() or 1))
    require(PROMETHEUS_BIN)
    require(PROMTOOL_BIN)
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="slamon-backtest-")) if own_tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    mark = [_cpu()]

    def cpu_of(label: str) -> None:  # a child's CPU counts once it was waited for (Prometheus: at its stop)
        now = _cpu()
        cpu[label] = round(now - mark[0], 2)
        mark[0] = now

    def phase(label: str) -> Progress:
        return Progress(label, enabled=progress)

    files = [(name, alerting, rule_files(contracts, alerting)) for name, alerting in configs]
    try:
        bar = phase("scrape")
        history = scrape_history(lines, contracts, work / "history", settings, bar, jobs=jobs,
                                 families=families_read(f for _, _, f in files))
        timings["scrape"] = bar.finish(f"{history.scrapes:,} scrapes, {history.samples:,} samples")
        cpu_of("scrape")
        bar = phase("backfill")
        base = work / "tsdb-base"
        shutil.rmtree(base, ignore_errors=True)
        backfill_history(history.files, base, bar, jobs=jobs)
        timings["backfill_openmetrics"] = bar.finish(f"{len(history.files)} blocks")
        cpu_of("backfill_openmetrics")
        keys = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas}
        scored_from = scoring_start(history.start_s, history.boundaries, keys, settings.warm_up_s,
                                    slack_s=settings.boundary_slack_s)
        results: list[tuple[str, object, int, list[Episode]]] = []
        queries = 0
        if method == "inline":
            bar = phase("prometheus")
            prom = _prometheus(work / "prometheus", base, settings).start()
            timings["prometheus_start"] = bar.finish()
            try:
                bar = phase("alerts")
                ev = Evaluator(prom, history.start_s, history.end_s, settings.step_s)
                rules = [ev.rules(f) for _, _, f in files]
                ev.run((r["expr"] for rs in rules for r in rs), bar)
                timings["alerts"] = bar.finish(f"{ev.queries} range queries for {sum(map(len, rules))} rules")
                queries = ev.queries
                for (name, alerting, _), rs in zip(files, rules, strict=True):
                    results.append((name, alerting, len(rs), ev.episodes(rs, alerting.severity_level)))
            finally:
                prom.stop()
            cpu_of("prometheus and alerts")
        else:
            for index, (name, alerting, f) in enumerate(files):
                cwork = work / f"config{index}"
                shutil.rmtree(cwork, ignore_errors=True)
                cwork.mkdir()
                shutil.copytree(base, cwork / "data")
                bar = phase(f"rules {index + 1}")
                prom = _prometheus(cwork, cwork / "data", settings).start()
                try:
                    backfill_recording_rules(prom, f, cwork, history.start_s, history.end_s, settings.step_s)
                    timings[f"{name}: recording rules"] = bar.finish()
                    bar = phase(f"alerts {index + 1}")
                    n, episodes = evaluate_alerts(prom, f, history.start_s, history.end_s, settings.step_s,
                                                  alerting.severity_level, inline=False)
                    timings[f"{name}: alerts"] = bar.finish()
                finally:
                    prom.stop()
                cpu_of(f"{name}: recording rules and alerts")
                results.append((name, alerting, n, episodes))
        scored = []
        for name, alerting, n, episodes in results:
            scored.append(score(
                name, n, episodes, history.breaches, settings.horizon_s, settings.grace_s,
                periods=history.periods, burns=history.burns, items=history.items,
                selections=item_selections(contracts, alerting), scored_from=scored_from, settings=settings))
        return BacktestResult(history, scored, timings, cpu, queries)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
