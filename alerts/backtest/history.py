"""The history of the backtest: events replayed through a worker's engine, scraped at every step of event time.

The events are replayed (in file order, as a worker consumes them) through the workers' `PartitionEngine`, and at
every scrape step the workers' own collector (`streams.metrics.EngineCollector`) is asked for its series at that
instant. The samples are written as OpenMetrics with timestamps by prometheus_client's own exposition, so every
name, label and value is exactly what `/metrics` exports; `promtool tsdb create-blocks-from openmetrics` reads
the file. The breaches, periods and remaining error budgets the engine saw are tracked on the way
(`scoring.BreachTracker`), and every ticket the engine decided is kept as an `ItemOutcome` from its SLA events
(the records the workers publish on the SLA-events topic: decided upserts, withdrawn deletes), so that item
warnings can be scored against item breaches.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from alerts.backtest import BacktestError
from alerts.backtest.scoring import (
    Breach,
    BreachTracker,
    BurnEpisode,
    ItemOutcome,
    Period,
    Settings,
    burn_episodes,
    iso,
)
from monitor import conventions as names

US = 1_000_000
BACKTEST_INSTANCE = "backtest:9108"  # the `instance` label of the backtest's (always successful) scrapes
_TS = re.compile(rb'"ts"\s*:\s*"([^"]{10,40})"')

# exported family -> the figure the breach tracker reads
_FIGURES = {
    names.SLA_MET: "met", names.SLA_PERIOD_DECIDED: "decided", names.SLA_PERIOD_START: "period_start",
    names.UPTIME_UP_SECONDS: "up", names.UPTIME_DOWNTIME_SECONDS: "down",
    names.SLA_COMPLIANCE_RATIO: "value", names.SLA_VALUE_SECONDS: "value", names.SLA_VALUE_SCORE: "value",
    names.SLA_ERROR_BUDGET_REMAINING: "budget",
}


@dataclass
class History:
    start_s: int
    end_s: int
    scrapes: int
    samples: int
    events: int
    breaches: list[Breach]
    seconds: float = 0.0
    periods: list[Period] = field(default_factory=list)
    boundaries: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    burns: list[BurnEpisode] = field(default_factory=list)
    items: list[ItemOutcome] = field(default_factory=list)


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
    from monitor.contracts import TicketSla

    rolling = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas
               if not isinstance(s.period, str)}
    tickets = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas
               if isinstance(s, TicketSla)}
    items: dict[tuple[str, str, str], ItemOutcome] = {}
    writer = OpenMetricsSpool(out_path.parent / (out_path.name + ".parts"))
    scrapes = samples = events = 0
    first = next_at = None

    def scrape(at_us: int) -> None:
        nonlocal scrapes, samples
        clock["at"] = at_us
        t_s = at_us // US
        figures: dict[tuple[str, str], dict] = defaultdict(dict)
        families = list(collector.collect())
        for family in families:
            _note_figures(family, figures)
        samples += writer.add(families, t_s)
        for key in figures:
            figures[key]["rolling"] = key in rolling
        tracker.observe(t_s, figures)
        for out in pe.take_unsent():
            _note_item(out, tickets, items)
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
    burns = [b for key, samples in tracker.budget.items()
             for b in burn_episodes(key[0], key[1], samples, settings.burn_window_s, settings.burn_share)]
    return History(first // US, next_at // US, scrapes, samples, events, tracker.breaches,
                   time.perf_counter() - started, tracker.periods, dict(tracker.boundaries), burns,
                   sorted(items.values(), key=lambda i: (i.deadline_s, i.client, i.sla, i.item)))


def _note_item(out, tickets: set[tuple[str, str]], items: dict) -> None:
    """An SLA event of a ticket SLA: a decided item is (re)recorded, a withdrawn one forgotten."""
    if out.kind != "sla_events":
        return
    rec = orjson.loads(out.value)
    key = (rec.get("client"), rec.get("sla"))
    if key not in tickets or rec.get("deadline_us") is None or rec.get("start_us") is None:
        return
    ident = (*key, str(rec.get("item")))
    if rec.get("change") == "withdrawn":
        items.pop(ident, None)
        return
    stop = rec.get("stop_us")
    items[ident] = ItemOutcome(key[0], key[1], ident[2], rec.get("priority"), rec["start_us"] / US,
                               rec["deadline_us"] / US, (stop if stop is not None else rec["at_us"]) / US,
                               rec.get("outcome") == "bad")


def _note_figures(family, figures: dict) -> None:
    field_name = _FIGURES.get(family.name)
    if field_name is None:
        return
    for s in family.samples:
        key = (s.labels.get(names.CLIENT), s.labels.get(names.SLA))
        f = figures[key]
        f[field_name] = s.value
        if field_name in ("up", "down"):
            f["uptime"] = True
            f["known"] = f.get("up", 0.0) + f.get("down", 0.0)


class _Families:
    """Metric families as a registry, for prometheus_client's exposition."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self):
        return self.families


def _exposition(family: Metric) -> list[str]:
    """The family in prometheus_client's OpenMetrics exposition, by line (HELP, TYPE, samples..., EOF)."""
    return generate_latest(_Families(family)).decode("utf-8").split("\n")


class OpenMetricsSpool:
    """Scrapes in OpenMetrics with timestamps; the samples are spooled per metric family (OpenMetrics forbids
    interleaving families) and joined by `finish`. Every part of a line comes from prometheus_client: the family
    header and each series' name and labels are rendered once by its exposition (`generate_latest`), the values
    by `floatToGoString`. A scrape also holds `up{job="slamon", instance="backtest:9108"} 1`, as Prometheus would
    record it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.files: dict[str, tuple[str, IO[str]]] = {}  # family -> (# HELP / # TYPE lines, spool file)
        self._series: dict[tuple, str] = {}  # (sample name, labels) -> the line's `name{labels}` part

    def add(self, families: list[Metric], t_s: int) -> int:
        """Spool one scrape of `families` at `t_s`; returns the number of their samples written."""
        n = 0
        stamp = f" {t_s}\n"
        for family in families:
            handle = self._file(family)
            for s in family.samples:
                if family.type == "counter" and not s.name.endswith("_total"):
                    continue  # _created samples: not exported by the workers' collector
                handle.write(self._series_part(family, s) + " " + floatToGoString(s.value) + stamp)
                n += 1
        up = GaugeMetricFamily(names.UP, "1 if the target was scraped (the backtest's scrapes always succeed)",
                               labels=[names.JOB, names.INSTANCE])
        up.add_metric([names.WORKER_JOB, BACKTEST_INSTANCE], 1)
        self._file(up).write(self._series_part(up, up.samples[0]) + " " + floatToGoString(1) + stamp)
        return n

    def _series_part(self, family: Metric, sample: Sample) -> str:
        key = (sample.name, *sample.labels.items())
        part = self._series.get(key)
        if part is None:
            one = Metric(family.name, family.documentation, family.type)
            one.samples = [sample._replace(value=0.0, timestamp=None, exemplar=None)]
            part = self._series[key] = _exposition(one)[2].rsplit(" ", 1)[0]  # the line without " 0.0"
        return part

    def _file(self, family: Metric) -> IO[str]:
        entry = self.files.get(family.name)
        if entry is None:
            header = "".join(line + "\n" for line in _exposition(Metric(family.name, family.documentation,
                                                                       family.type))[:2])
            handle = open(self.dir / f"{len(self.files):04d}.om", "w", encoding="utf-8")  # noqa: SIM115
            entry = self.files[family.name] = (header, handle)
        return entry[1]

    def finish(self, out_path: Path) -> None:
        with open(out_path, "w", encoding="utf-8") as out:
            for header, handle in self.files.values():
                handle.close()
                out.write(header)
                with open(handle.name, encoding="utf-8") as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
        shutil.rmtree(self.dir, ignore_errors=True)
