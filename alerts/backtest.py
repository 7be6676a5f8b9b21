"""`slamon backtest`: the generated alert rules evaluated by real Prometheus over a replayed history.

    slamon backtest EVENTS.jsonl --contracts C.yaml [--alerting A.yaml] [--compare B.yaml]

1. **Scrape the history.** The events are replayed (in file order, as a worker consumes them) through the
   workers' `PartitionEngine`, and at every scrape step of event time (default 60 s) the workers' own
   collector (`streams.metrics.EngineCollector`) is asked for its series at that instant. The samples are
   written as OpenMetrics with timestamps, so every name and label is exactly what `/metrics` exports.
2. **Backfill.** `promtool tsdb create-blocks-from openmetrics` turns them into TSDB blocks.
3. **Recording rules.** The generated rule files (`alerts.rules.rule_files`) are backfilled with
   `promtool tsdb create-blocks-from rules` against a Prometheus serving those blocks, one dependency layer
   at a time (promtool cannot backfill a rule that reads another rule of the same run).
4. **Alerts.** Each generated alerting rule's own `expr` is run through Prometheus' `query_range` at the
   rule evaluation interval; an alert fires at the first evaluation where its expression has returned the
   series continuously for the rule's `for:` (Prometheus' pending -> firing rule). Nothing of the alert
   logic is reimplemented: the conditions are the generated PromQL, evaluated by Prometheus.
5. **Score** against the breaches the engine saw. A *breach* of an SLA is the moment its period is lost
   so far: `slamon_sla_met` drops to 0 (the period-to-date value misses the target) with at least
   `--min-volume` decisions in the period (uptime: `--uptime-min-volume` of probe-covered time). It
   counts once until the SLA meets its target again for at least `--merge-gap` (a new period starts over).
   An alert episode of an SLA-scoped alert (labels client and sla) *predicts* a breach of the same SLA
   when it started before it (at most `--horizon` before) and was still firing at the breach or stopped
   at most `--grace` before it. An episode is a *true positive* when it predicts a breach, *late* when it
   starts while the SLA is already in breach, and a *false alarm* otherwise. A breach is *detected* when
   an episode predicts it (lead time = breach - the earliest such start), otherwise *missed*.

Pure parts (scoring, layering, rendering) are functions over data; the I/O (promtool, Prometheus, temp
directories) is in `Backtest`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

US = 1_000_000
PROMETHEUS_BIN = os.environ.get("SLAMON_PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("SLAMON_PROMTOOL_BIN", "/usr/bin/promtool")
MAX_POINTS = 10_000  # per query_range call (Prometheus refuses more than 11,000 points per series)
SLA_CATEGORIES = ("burn_rate", "breach", "calls", "uptime", "penalty")
_TS = re.compile(rb'"ts"\s*:\s*"([^"]{10,40})"')


class BacktestError(RuntimeError):
    """The backtest cannot run (a missing binary, a failed backfill, Prometheus not starting)."""


# --- settings and results --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    step_s: int = 60  # scrape step and rule evaluation interval (event time)
    horizon_s: int = 24 * 3600  # an alert predicts a breach at most this long after it started ...
    grace_s: int = 3600  # ... and while it fires or at most this long after it stopped
    min_volume: float = 20  # decisions in the period before a missed period counts as a breach
    uptime_min_volume_s: float = 3600  # probe-covered seconds, for uptime SLAs
    merge_gap_s: int = 3600  # a breach that recovers for less than this and fails again is the same breach


@dataclass
class Breach:
    client: str
    sla: str
    at_s: float  # the scrape instant the SLA was first seen in breach
    end_s: float  # the last scrape instant in breach
    value: float | None = None  # the period-to-date value at the breach (compliance, seconds, score)


@dataclass
class Episode:
    """One firing span of an alert (per alertname, severity, client, sla; series merged)."""

    alert: str
    severity: str
    category: str
    client: str
    sla: str
    pending_s: float  # first evaluation with a result
    start_s: float  # firing from
    end_s: float  # last evaluation firing
    outcome: str = ""  # true_positive | late | false_alarm | not_scored
    lead_s: float | None = None  # to the breach it predicted


@dataclass
class Scored:
    name: str  # the alerting config's name
    rules: int  # alerting rules evaluated
    episodes: list[Episode]
    breaches: list[Breach]
    detected: dict[int, tuple[float, str]]  # breach index -> (lead seconds, first alert)

    @property
    def leads(self) -> list[float]:
        return sorted(lead for lead, _ in self.detected.values())

    def summary(self) -> dict:
        scored = [e for e in self.episodes if e.outcome != "not_scored"]
        tp = sum(e.outcome == "true_positive" for e in scored)
        fa = sum(e.outcome == "false_alarm" for e in scored)
        late = sum(e.outcome == "late" for e in scored)
        return {
            "config": self.name, "alert_rules": self.rules, "breaches": len(self.breaches),
            "detected": len(self.detected), "missed": len(self.breaches) - len(self.detected),
            "recall": _ratio(len(self.detected), len(self.breaches)),
            "alert_episodes": len(scored), "true_positives": tp, "late": late, "false_alarms": fa,
            "precision": _ratio(tp, tp + fa),
            "lead_time_seconds": lead_stats(self.leads),
            "not_scored_episodes": len(self.episodes) - len(scored),
        }

    def per_alert(self) -> list[dict]:
        rows: dict[tuple[str, str], dict] = {}
        for e in self.episodes:
            row = rows.setdefault((e.alert, e.severity), {
                "alert": e.alert, "severity": e.severity, "category": e.category, "fired": 0,
                "true_positives": 0, "late": 0, "false_alarms": 0, "not_scored": 0, "leads": []})
            row["fired"] += 1
            key = {"true_positive": "true_positives", "late": "late", "false_alarm": "false_alarms",
                   "not_scored": "not_scored"}[e.outcome]
            row[key] += 1
            if e.lead_s is not None:
                row["leads"].append(e.lead_s)
        out = []
        for row in sorted(rows.values(), key=lambda r: (r["alert"], r["severity"])):
            leads = row.pop("leads")
            row["lead_time_seconds"] = lead_stats(leads)
            out.append(row)
        return out

    def per_sla(self) -> list[dict]:
        keys = sorted({(b.client, b.sla) for b in self.breaches} |
                      {(e.client, e.sla) for e in self.episodes if e.outcome != "not_scored"})
        out = []
        for client, sla in keys:
            idx = [i for i, b in enumerate(self.breaches) if (b.client, b.sla) == (client, sla)]
            eps = [e for e in self.episodes if (e.client, e.sla) == (client, sla)]
            leads = sorted(self.detected[i][0] for i in idx if i in self.detected)
            out.append({
                "client": client, "sla": sla, "breaches": len(idx),
                "detected": sum(i in self.detected for i in idx), "missed": sum(i not in self.detected for i in idx),
                "breach_times": [iso(self.breaches[i].at_s) for i in idx],
                "first_alerts": [self.detected[i][1] if i in self.detected else None for i in idx],
                "alerts_fired": len(eps), "false_alarms": sum(e.outcome == "false_alarm" for e in eps),
                "late": sum(e.outcome == "late" for e in eps), "lead_time_seconds": lead_stats(leads),
            })
        return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def lead_stats(leads: list[float]) -> dict | None:
    if not leads:
        return None
    leads = sorted(leads)
    return {"n": len(leads), "min": leads[0], "p50": statistics.median(leads), "max": leads[-1],
            "mean": statistics.fmean(leads),
            "buckets": {label: sum(lo <= x < hi for x in leads) for label, lo, hi in LEAD_BUCKETS}}


LEAD_BUCKETS = (("<5m", 0, 300), ("5-15m", 300, 900), ("15m-1h", 900, 3600), ("1-6h", 3600, 6 * 3600),
                ("6-24h", 6 * 3600, 24 * 3600), (">=24h", 24 * 3600, math.inf))


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# --- scoring (pure) --------------------------------------------------------------------------------------

def predicts(e: Episode, b: Breach, horizon_s: float, grace_s: float) -> bool:
    """The alert episode announced the breach: it started before it (at most `horizon_s` before) and was
    still firing, or stopped at most `grace_s` before it (an alert that cleared long before did not)."""
    return e.start_s <= b.at_s <= e.end_s + grace_s and b.at_s - e.start_s <= horizon_s


def score(name: str, rules: int, episodes: list[Episode], breaches: list[Breach], horizon_s: float,
          grace_s: float) -> Scored:
    """Classify alert episodes and breaches (see the module docstring)."""
    by_sla: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, b in enumerate(breaches):
        by_sla[(b.client, b.sla)].append(i)
    detected: dict[int, tuple[float, str]] = {}
    for e in episodes:
        if e.category not in SLA_CATEGORIES or e.client == "all" or e.sla == "all":
            e.outcome = "not_scored"
            continue
        mine = [breaches[i] for i in by_sla.get((e.client, e.sla), [])]
        following = [b for b in mine if predicts(e, b, horizon_s, grace_s)]
        if following:
            e.outcome, e.lead_s = "true_positive", following[0].at_s - e.start_s
        elif any(b.at_s <= e.start_s <= b.end_s for b in mine):
            e.outcome = "late"
        else:
            e.outcome = "false_alarm"
    for i, b in enumerate(breaches):
        before = [e for e in episodes if e.outcome != "not_scored" and (e.client, e.sla) == (b.client, b.sla)
                  and predicts(e, b, horizon_s, grace_s)]
        if before:
            first = min(before, key=lambda e: (e.start_s, e.alert))
            detected[i] = (b.at_s - first.start_s, f"{first.alert}/{first.severity}")
    return Scored(name, rules, episodes, breaches, detected)


def episodes_from_series(alert: str, severity: str, category: str, client: str, sla: str, for_s: float,
                         step_s: float, series: Iterable[list[float]]) -> list[Episode]:
    """Firing episodes from the evaluation instants at which the alert's expression returned each series:
    active from the first instant of a run of consecutive evaluations, firing once active for `for_s`."""
    spans: list[tuple[float, float, float]] = []
    for times in series:
        run: list[float] = []
        for t in sorted(times):
            if run and t - run[-1] > step_s * 1.5:
                spans.extend(_firing(run, for_s))
                run = []
            run.append(t)
        if run:
            spans.extend(_firing(run, for_s))
    spans.sort()
    merged: list[list[float]] = []
    for pending, start, end in spans:  # series of one alert firing together are one notification
        if merged and start <= merged[-1][2] + step_s * 1.5:
            merged[-1][2] = max(merged[-1][2], end)
            merged[-1][0] = min(merged[-1][0], pending)
        else:
            merged.append([pending, start, end])
    return [Episode(alert, severity, category, client, sla, p, s, e) for p, s, e in merged]


def _firing(run: list[float], for_s: float) -> list[tuple[float, float, float]]:
    active = run[0]
    firing = [t for t in run if t - active >= for_s]
    return [(active, firing[0], run[-1])] if firing else []


class BreachTracker:
    """Breaches from the exported series at each scrape: met == 0 with enough volume in the period."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.breaches: list[Breach] = []
        self._open: dict[tuple[str, str], Breach] = {}  # in breach now
        self._last: dict[tuple[str, str], Breach] = {}  # the latest breach, for merging
        self._period: dict[tuple[str, str], float] = {}

    def observe(self, t_s: float, figures: dict[tuple[str, str], dict]) -> None:
        gap = self.settings.merge_gap_s
        for key, f in figures.items():
            met, start = f.get("met"), f.get("period_start")
            if met is None:
                continue
            volume = f.get("decided", 0.0) if not f.get("uptime") else f.get("known", 0.0)
            gate = self.settings.uptime_min_volume_s if f.get("uptime") else self.settings.min_volume
            new_period = start is not None and self._period.get(key) not in (None, start) and not f.get("rolling")
            if start is not None:
                self._period[key] = start
            if new_period:
                self._open.pop(key, None)
                self._last.pop(key, None)
            failing = met == 0 and volume >= gate
            current = self._open.get(key)
            if failing:
                if current is not None:
                    current.end_s = t_s
                    continue
                last = self._last.get(key)
                if last is not None and t_s - last.end_s <= gap:
                    last.end_s = t_s  # a short recovery: the same breach goes on
                    self._open[key] = last
                    continue
                b = Breach(key[0], key[1], t_s, t_s, f.get("value"))
                self.breaches.append(b)
                self._open[key] = self._last[key] = b
            elif current is not None:
                del self._open[key]


# --- the rules -------------------------------------------------------------------------------------------

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


# --- scraping the history --------------------------------------------------------------------------------

@dataclass
class History:
    start_s: int
    end_s: int
    scrapes: int
    samples: int
    events: int
    breaches: list[Breach]
    seconds: float = 0.0


def _event_us(line: bytes) -> int | None:
    m = _TS.search(line)
    if not m:
        return None
    try:
        ts = datetime.fromisoformat(m.group(1).decode().replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError):
        return None
    if ts.tzinfo is None:
        return None
    from monitor.events import to_us

    return to_us(ts)


def scrape_history(lines: Iterable[bytes], contracts, out_path: Path, settings: Settings,
                   progress: bool = False) -> History:
    """Replay `lines` through a worker's PartitionEngine and write the collector's series at every scrape
    step as OpenMetrics with timestamps (families grouped, as the format requires)."""
    from streams.metrics import EngineCollector
    from streams.partition_engine import PartitionEngine

    started = time.perf_counter()
    step = settings.step_s * US
    pe = PartitionEngine(0, contracts)
    clock = {"at": 0}
    collector = EngineCollector(lambda: [pe], clock=lambda _pe: clock["at"], wall=lambda: clock["at"] / US)
    tracker = BreachTracker(settings)
    rolling = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas
               if not isinstance(s.period, str)}
    writer = _OpenMetricsWriter(out_path.parent / (out_path.name + ".parts"))
    scrapes = samples = events = 0
    first = next_at = None

    def scrape(at_us: int) -> None:
        nonlocal scrapes, samples
        clock["at"] = at_us
        t_s = at_us // US
        figures: dict[tuple[str, str], dict] = defaultdict(dict)
        for family in collector.collect():
            samples += writer.add(family, t_s)
            _note_figures(family, figures)
        writer.add_up(t_s)
        for key in figures:
            figures[key]["rolling"] = key in rolling
        tracker.observe(t_s, figures)
        pe.take_unsent()
        pe.outbox.clear()  # no producer here: SLA events and dead letters are not published
        scrapes += 1
        if progress and scrapes % 1440 == 0:
            print(f"backtest: scraped {iso(t_s)} ({scrapes} scrapes)", file=sys.stderr)

    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        ts = _event_us(line)
        if ts is not None:
            if first is None:
                first = (ts // step + 1) * step  # the first scrape after the first event
                next_at = first
            while ts > next_at:
                scrape(next_at)
                next_at += step
        pe.process(line, offset)
        events += 1
    if first is None:
        raise BacktestError("no events with a readable `ts` in the input")
    scrape(next_at)  # the state after the last event
    writer.finish(out_path)
    return History(first // US, next_at // US, scrapes, samples, events, tracker.breaches,
                   time.perf_counter() - started)


_FIGURES = {
    "slamon_sla_met": "met", "slamon_sla_period_decided": "decided", "slamon_sla_period_start_seconds":
    "period_start", "slamon_uptime_up_seconds": "up", "slamon_uptime_downtime_seconds": "down",
    "slamon_sla_compliance_ratio": "value", "slamon_sla_value_seconds": "value", "slamon_sla_value_score": "value",
}


def _note_figures(family, figures: dict) -> None:
    field_name = _FIGURES.get(family.name)
    if field_name is None:
        return
    for s in family.samples:
        key = (s.labels.get("client"), s.labels.get("sla"))
        f = figures[key]
        f[field_name] = s.value
        if field_name in ("up", "down"):
            f["uptime"] = True
            f["known"] = f.get("up", 0.0) + f.get("down", 0.0)


class _OpenMetricsWriter:
    """Samples spooled per metric family (OpenMetrics forbids interleaving families), joined at the end."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.files: dict[str, tuple[str, str, object]] = {}  # family -> (type, help, file)

    def _file(self, name: str, kind: str, doc: str):
        entry = self.files.get(name)
        if entry is None:
            handle = open(self.dir / f"{len(self.files):04d}.om", "w", encoding="utf-8")  # noqa: SIM115
            entry = self.files[name] = (kind, doc, handle)
        return entry[2]

    def add(self, family, t_s: int) -> int:
        kind = family.type if family.type in ("counter", "gauge") else "unknown"
        handle = self._file(family.name, kind, family.documentation)
        n = 0
        for s in family.samples:
            if kind == "counter" and not s.name.endswith("_total"):
                continue  # _created samples: not exported by the workers' collector
            handle.write(f"{s.name}{_labels(s.labels)} {_value(s.value)} {t_s}\n")
            n += 1
        return n

    def add_up(self, t_s: int) -> None:
        self._file("up", "gauge", "1 if the target was scraped (the backtest's scrapes always succeed)").write(
            f'up{{job="slamon",instance="backtest:9108"}} 1 {t_s}\n')

    def finish(self, out_path: Path) -> None:
        with open(out_path, "w", encoding="utf-8") as out:
            for name, (kind, doc, handle) in self.files.items():
                handle.close()
                out.write(f"# HELP {name} {_escape_help(doc)}\n# TYPE {name} {kind}\n")
                with open(handle.name, encoding="utf-8") as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
        shutil.rmtree(self.dir, ignore_errors=True)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _value(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


# --- Prometheus and promtool -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(binary: str, package: str = "prometheus") -> str:
    found = binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else shutil.which(binary)
    if not found:
        raise BacktestError(f"{binary} not found: the backtest needs Prometheus and promtool "
                            f"(Debian: apt-get install {package}; or set SLAMON_PROMETHEUS_BIN / "
                            f"SLAMON_PROMTOOL_BIN)")
    return found


def _run(cmd: list[str], what: str, timeout: float = 3600) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise BacktestError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


class PrometheusServer:
    """A private Prometheus serving a TSDB directory on a free local port (no scraping, no rules)."""

    def __init__(self, data_dir: Path, workdir: Path, lookback_s: int, binary: str = PROMETHEUS_BIN) -> None:
        self.data_dir = data_dir
        self.workdir = workdir
        self.lookback_s = lookback_s
        self.binary = _need(binary)
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n")
        self.port = _free_port()
        cmd = [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
               f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y",
               f"--query.lookback-delta={max(300, self.lookback_s)}s", "--query.max-samples=200000000",
               "--log.level=warn"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BacktestError(f"Prometheus exited at start (code {self.proc.returncode}): {self._tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise BacktestError(f"Prometheus did not become ready within {timeout:.0f} s: {self._tail()}")

    def _tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def query_range(self, expr: str, start_s: int, end_s: int, step_s: int) -> list[dict]:
        """Every series of `expr` over [start, end], in chunks Prometheus accepts; values concatenated."""
        out: dict[tuple, dict] = {}
        chunk = step_s * (MAX_POINTS - 1)
        t = start_s
        while t <= end_s:
            stop = min(end_s, t + chunk)
            params = urllib.parse.urlencode({"query": expr, "start": t, "end": stop, "step": step_s})
            data = self._get(f"/api/v1/query_range?{params}")
            for series in data["result"]:
                key = tuple(sorted(series["metric"].items()))
                entry = out.setdefault(key, {"metric": series["metric"], "values": []})
                entry["values"].extend(series["values"])
            t = stop + step_s
        return list(out.values())

    def _get(self, path: str) -> dict:
        try:
            with urllib.request.urlopen(self.url + path, timeout=300) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
            raise BacktestError(f"Prometheus query failed: {body.get('error', err)}") from None
        if body.get("status") != "success":
            raise BacktestError(f"Prometheus query failed: {body.get('error')}")
        return body["data"]


def backfill_openmetrics(om_path: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    _run([_need(PROMTOOL_BIN), "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(om_path),
          str(data_dir)], "promtool tsdb create-blocks-from openmetrics")


def _move_blocks(src: Path, dest: Path) -> int:
    moved = 0
    for block in src.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            shutil.move(str(block), str(dest / block.name))
            moved += 1
    return moved


def backfill_recording_rules(prom: PrometheusServer, files: dict[str, dict], workdir: Path, start_s: int,
                             end_s: int, step_s: int) -> int:
    """Backfill every recording rule, layer by layer, into the server's TSDB (restarting it to load the
    new blocks). Returns the number of recording rules."""
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
        _run([_need(PROMTOOL_BIN), "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={prom.url}",
              f"--start={start_s}", f"--end={end_s}", f"--eval-interval={step_s}s", f"--output-dir={out_dir}",
              *paths], f"promtool tsdb create-blocks-from rules (layer {level})")
        if _move_blocks(out_dir, prom.data_dir):
            prom.restart()
    return count


def evaluate_alerts(prom: PrometheusServer, files: dict[str, dict], start_s: int, end_s: int,
                    step_s: int) -> tuple[int, list[Episode]]:
    rules = alerting_rules(files)
    episodes: list[Episode] = []
    for rule in rules:
        labels = rule.get("labels", {})
        series = prom.query_range(rule["expr"], start_s, end_s, step_s)
        by_scope: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
        for s in series:
            client = labels.get("client") or s["metric"].get("client", "all")
            sla = labels.get("sla") or s["metric"].get("sla", "all")
            by_scope[(client, sla)].append([float(t) for t, _ in s["values"]])
        for (client, sla), times in by_scope.items():
            episodes.extend(episodes_from_series(
                rule["alert"], labels.get("severity", ""), labels.get("category", ""), client, sla,
                parse_prom_duration(rule.get("for")), step_s, times))
    episodes.sort(key=lambda e: (e.start_s, e.alert, e.client, e.sla))
    return len(rules), episodes


# --- the whole run ---------------------------------------------------------------------------------------

@dataclass
class BacktestResult:
    history: History
    configs: list[Scored]
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        h = self.history
        return {
            "history": {"start": iso(h.start_s), "end": iso(h.end_s), "events": h.events, "scrapes": h.scrapes,
                        "samples": h.samples, "breaches": [asdict(b) | {"at": iso(b.at_s)} for b in h.breaches]},
            "configs": [{"summary": c.summary(), "alerts": c.per_alert(), "slas": c.per_sla(),
                         "episodes": [asdict(e) | {"start": iso(e.start_s)} for e in c.episodes]}
                        for c in self.configs],
            "timings_seconds": self.timings,
        }


def run_backtest(lines: Iterable[bytes], contracts, configs: list[tuple[str, object]],
                 settings: Settings = Settings(), workdir: Path | None = None,
                 progress: bool = False) -> BacktestResult:
    """Scrape the history once, then evaluate the rules generated for each (name, Alerting) config."""
    from alerts.rules import rule_files

    _need(PROMETHEUS_BIN)
    _need(PROMTOOL_BIN)
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="slamon-backtest-")) if own_tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        om = work / "history.om.txt"
        history = scrape_history(lines, contracts, om, settings, progress)
        timings["scrape"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        base = work / "tsdb-base"
        backfill_openmetrics(om, base)
        timings["backfill_openmetrics"] = time.perf_counter() - t0
        scored = []
        for index, (name, alerting) in enumerate(configs):
            t0 = time.perf_counter()
            cwork = work / f"config{index}"
            shutil.rmtree(cwork, ignore_errors=True)
            cwork.mkdir()
            data = cwork / "data"
            shutil.copytree(base, data)
            files = rule_files(contracts, alerting)
            prom = PrometheusServer(data, cwork, lookback_s=2 * settings.step_s).start()
            try:
                backfill_recording_rules(prom, files, cwork, history.start_s, history.end_s, settings.step_s)
                timings[f"{name}: recording rules"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                rules, episodes = evaluate_alerts(prom, files, history.start_s, history.end_s, settings.step_s)
                timings[f"{name}: alerts"] = time.perf_counter() - t0
            finally:
                prom.stop()
            scored.append(score(name, rules, episodes, history.breaches, settings.horizon_s, settings.grace_s))
        return BacktestResult(history, scored, timings)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


# --- rendering -------------------------------------------------------------------------------------------

def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    text = f"{s / 3600:.1f}h" if s >= 3600 else (f"{s / 60:.0f}m" if s >= 60 else f"{s:.0f}s")
    return ("-" if seconds < 0 else "") + text


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def to_table(result: BacktestResult) -> str:
    h = result.history
    lines = [f"history {iso(h.start_s)} .. {iso(h.end_s)}: {h.events:,} events, {h.scrapes:,} scrapes, "
             f"{h.samples:,} samples, {len(h.breaches)} breaches", ""]
    names = [c.name for c in result.configs]
    sums = [c.summary() for c in result.configs]
    rows = [("", *names)]
    for label, key, fmt in (
        ("alert rules", "alert_rules", str), ("breaches", "breaches", str), ("detected", "detected", str),
        ("missed", "missed", str), ("recall", "recall", _pct), ("alert episodes (SLA)", "alert_episodes", str),
        ("true positives", "true_positives", str), ("late (after the breach)", "late", str),
        ("false alarms", "false_alarms", str), ("precision", "precision", _pct),
    ):
        rows.append((label, *[fmt(s[key]) for s in sums]))
    for label, key in (("lead time min", "min"), ("lead time p50", "p50"), ("lead time max", "max")):
        rows.append((label, *[_dur(s["lead_time_seconds"][key]) if s["lead_time_seconds"] else "-" for s in sums]))
    rows.append(("pipeline/data alerts (not scored)", *[str(s["not_scored_episodes"]) for s in sums]))
    lines += _grid(rows)
    for c in result.configs:
        lines += ["", f"[{c.name}] per alert"]
        rows = [("alert", "severity", "fired", "TP", "late", "false", "lead p50")]
        for r in c.per_alert():
            lead = r["lead_time_seconds"]
            rows.append((r["alert"], r["severity"], str(r["fired"]), str(r["true_positives"]), str(r["late"]),
                         str(r["false_alarms"]) if r["category"] in SLA_CATEGORIES else "n/a",
                         _dur(lead["p50"]) if lead else "-"))
        lines += _grid(rows)
        lines += ["", f"[{c.name}] per client/SLA"]
        rows = [("client", "sla", "breaches", "detected", "missed", "alerts", "false", "lead min..max",
                 "first alert")]
        for r in c.per_sla():
            lead = r["lead_time_seconds"]
            first = next((a for a in r["first_alerts"] if a), "-")
            rows.append((r["client"], r["sla"], str(r["breaches"]), str(r["detected"]), str(r["missed"]),
                         str(r["alerts_fired"]), str(r["false_alarms"]),
                         f"{_dur(lead['min'])}..{_dur(lead['max'])}" if lead else "-", first))
        lines += _grid(rows)
    if result.history.breaches:
        lines += ["", "breaches"]
        rows = [("client", "sla", "at", "until", *[f"lead ({n})" for n in names])]
        for i, b in enumerate(result.history.breaches):
            leads = [(_dur(c.detected[i][0]) + " " + c.detected[i][1]) if i in c.detected else "MISSED"
                     for c in result.configs]
            rows.append((b.client, b.sla, iso(b.at_s), iso(b.end_s), *leads))
        lines += _grid(rows)
    if result.timings:
        lines += ["", "timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())]
    return "\n".join(lines)


def _grid(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


# --- command line ----------------------------------------------------------------------------------------

def add_parsers(sub) -> None:
    from slamon.cli import DEFAULT_CONTRACTS

    p = sub.add_parser(
        "backtest", help="evaluate the generated alert rules over a replayed history with real Prometheus",
        description="Replays the events, writes the workers' metric series at every scrape step, backfills "
                    "them into a Prometheus TSDB, evaluates the generated recording and alerting rules with "
                    "real Prometheus, and scores the alerts against the breaches the engine saw.")
    p.add_argument("events", help="JSON Lines file, or - for stdin")
    p.add_argument("--contracts", default=DEFAULT_CONTRACTS)
    p.add_argument("--alerting", help="alerting config (default: the built-in defaults)")
    p.add_argument("--compare", help="a second alerting config, evaluated side by side")
    p.add_argument("--step", default="60s", help="scrape step and rule evaluation interval (default 60s)")
    p.add_argument("--horizon", default="24h",
                   help="an alert predicts a breach at most this long after it started (default 24h)")
    p.add_argument("--grace", default="1h",
                   help="... and at most this long after it stopped firing (default 1h)")
    p.add_argument("--min-volume", type=float, default=20,
                   help="decisions in the period before a missed period counts as a breach (default 20)")
    p.add_argument("--uptime-min-volume", default="1h", help="probe-covered time, for uptime SLAs (default 1h)")
    p.add_argument("--merge-gap", default="1h", help="a recovery shorter than this continues the breach")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("-o", "--output", help="file to write (default stdout)")
    p.add_argument("--keep", metavar="DIR", help="keep the work directory (OpenMetrics, TSDBs, rule layers) here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_cli)


def run_cli(args) -> int:
    from alerts.config import load_alerting
    from monitor.contracts import load_contracts
    from monitor.durations import parse_duration_us

    try:
        settings = Settings(
            step_s=parse_duration_us(args.step) // US, horizon_s=parse_duration_us(args.horizon) // US,
            grace_s=parse_duration_us(args.grace) // US,
            min_volume=args.min_volume, uptime_min_volume_s=parse_duration_us(args.uptime_min_volume) // US,
            merge_gap_s=parse_duration_us(args.merge_gap) // US)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if settings.step_s < 1:
        print("error: --step must be at least 1s", file=sys.stderr)
        return 2
    contracts = load_contracts(args.contracts)
    configs = [(Path(args.alerting).stem if args.alerting else "defaults", load_alerting(args.alerting))]
    if args.compare:
        name = Path(args.compare).stem
        if name == configs[0][0]:
            name += " (compare)"
        configs.append((name, load_alerting(args.compare)))
    stream = sys.stdin.buffer if args.events == "-" else open(args.events, "rb")  # noqa: SIM115
    try:
        result = run_backtest(_lines(stream), contracts, configs, settings,
                              workdir=Path(args.keep) if args.keep else None,
                              progress=not args.no_progress and sys.stderr.isatty())
    except BacktestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    text = to_table(result) if args.format == "table" else json.dumps(result.as_dict(), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


def _lines(stream) -> Iterator[bytes]:
    yield from stream


def main(argv: list[str] | None = None) -> int:
    """`python -m alerts.backtest backtest ...` until `slamon` wires the subcommand in."""
    parser = argparse.ArgumentParser(prog="slamon")
    add_parsers(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Exception as err:  # contract / alerting config errors carry their own messages
        if type(err).__name__ in ("ContractError", "AlertingError"):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
