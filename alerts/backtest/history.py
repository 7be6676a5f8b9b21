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

import functools
import gc
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from alerts.backtest import BacktestError
from alerts.backtest.progress import Progress
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
from streams.metrics import family_spec

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
    files: list[Path] = field(default_factory=list)  # OpenMetrics, one per 2-hour window


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


WINDOW_S = 2 * 3600  # promtool cuts blocks at these (epoch-aligned) boundaries: one OpenMetrics file per window


def _schedule(lines: list[bytes], step: int) -> tuple[list[int | None], int, int]:
    """Event time of every line (None: unreadable), the first scrape instant (the first step after the first
    event, in file order) and the last (the first step at or after the latest event)."""
    times = [_event_us(line) if line.strip() else None for line in lines]
    known = [t for t in times if t is not None]
    if not known:
        raise BacktestError("no events with a readable `ts` in the input")
    first = (known[0] // step + 1) * step
    last = max(first, -(-max(known) // step) * step)
    return times, first, last


def scrape_history(lines: Iterable[bytes], contracts, out_dir: Path, settings: Settings,
                   progress: Progress | None = None, jobs: int = 1,
                   families: frozenset[str] | None = None) -> History:
    """Replay `lines` through a worker's PartitionEngine and write the collector's series at every scrape
    step as OpenMetrics with timestamps, one file per 2-hour window (`History.files`, in `out_dir`).

    jobs > 1: the scrape instants are split into that many stretches of whole windows, each scraped by its
    own process (fork), which replays the events before its stretch without scraping (the engine's clock
    still advanced at every step, as the scrapes do): the same engine state, the same series.

    families: the exported families to write (default: all). The backtest writes those its alert rules read
    (`evaluation.families_read`): the others would only be backfilled and never queried, and the collector
    does not compute what feeds only them. The breach tracker's figures are read either way."""
    started = time.perf_counter()
    lines = lines if isinstance(lines, list) else list(lines)
    step = settings.step_s * US
    times, first, last = _schedule(lines, step)
    instants = (last - first) // step + 1
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    jobs = max(1, min(jobs, instants // (WINDOW_S * US // step) or 1))
    window = WINDOW_S * US
    # a later stretch also replays every event before it (30 days: ~270 CPU s for the first 15 days, against
    # ~850 for a stretch's scrapes), so the cuts lean late: k/jobs ** 0.75 (2 jobs: at 59 % of the history)
    cuts = [first] + [((first + int((last - first) * (k / jobs) ** 0.75)) // window) * window
                      for k in range(1, jobs)] + [last + 1]
    cuts = sorted(set(cuts))
    stretches = [(cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1) if cuts[k] < cuts[k + 1]]
    if progress is not None:
        progress.total = instants
    if len(stretches) == 1:
        parts = [_scrape_stretch(lines, times, contracts, out_dir, settings, first, last, *stretches[0],
                                 progress, families=families)]
    else:
        parts = _in_processes(lines, times, contracts, out_dir, settings, first, last, stretches, progress,
                              families)
    tracker = BreachTracker(settings)
    items: dict[tuple[str, str, str], ItemOutcome] = {}
    files: list[Path] = []
    scrapes = samples = 0
    for part in parts:
        for t_s, figures in part["figures"]:
            tracker.observe(t_s, figures)
        for ident, outcome in part["items"]:
            if outcome is None:
                items.pop(ident, None)
            else:
                items[ident] = outcome
        files += part["files"]
        scrapes += part["scrapes"]
        samples += part["samples"]
    burns = [b for key, budget in tracker.budget.items()
             for b in burn_episodes(key[0], key[1], budget, settings.burn_window_s, settings.burn_share)]
    events = sum(1 for line in lines if line.strip())
    return History(first // US, last // US, scrapes, samples, events, tracker.breaches,
                   time.perf_counter() - started, tracker.periods, dict(tracker.boundaries), burns,
                   sorted(items.values(), key=lambda i: (i.deadline_s, i.client, i.sla, i.item)), files=files)


def _in_processes(lines, times, contracts, out_dir, settings, first, last, stretches, progress,
                  families=None) -> list[dict]:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    results = ctx.SimpleQueue()

    def run(k: int, lo: int, hi: int) -> None:
        try:
            part = _scrape_stretch(lines, times, contracts, out_dir, settings, first, last, lo, hi, None, counter,
                                   families)
            results.put((k, part, None))
        except BaseException as err:
            results.put((k, None, f"{type(err).__name__}: {err}"))

    procs = [ctx.Process(target=run, args=(k, lo, hi), daemon=True) for k, (lo, hi) in enumerate(stretches)]
    # what exists now is only read by the children: out of their collections, whose passes over it would
    # copy every page they touch (30 days generated in-process: +38 % scrape CPU, 3x the system time)
    gc.freeze()
    try:
        for proc in procs:
            proc.start()
    finally:
        gc.unfreeze()
    parts: dict[int, dict] = {}
    try:
        while len(parts) < len(procs):
            while not results.empty():
                k, part, error = results.get()
                if error is not None:
                    raise BacktestError(f"scrape process {k} failed: {error}")
                parts[k] = part
            if len(parts) < len(procs):
                if any(not p.is_alive() and p.exitcode not in (0, None) for p in procs):
                    raise BacktestError("a scrape process died")
                if progress is not None:
                    progress.update(counter.value)
                time.sleep(0.1)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return [parts[k] for k in range(len(procs))]


def _scrape_stretch(lines: list[bytes], times: list[int | None], contracts, out_dir: Path, settings: Settings,
                    first: int, last: int, lo: int, hi: int, progress: Progress | None = None,
                    counter=None, families: frozenset[str] | None = None) -> dict:
    """Replay every line; scrape the instants in [lo, hi) (the others only advance the engine's clock)."""
    from monitor.contracts import TicketSla
    from streams.metrics import EngineCollector
    from streams.partition_engine import PartitionEngine

    step = settings.step_s * US
    pe = PartitionEngine(0, contracts)
    clock = {"at": 0}
    collector = EngineCollector(lambda: [pe], clock=lambda _pe: clock["at"], wall=lambda: clock["at"] / US,
                                families=None if families is None else families | _FIGURES.keys())
    rolling = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas
               if not isinstance(s.period, str)}
    tickets = {(c, s.name) for c, client in contracts.clients.items() for s in client.slas
               if isinstance(s, TicketSla)}
    figures_out: list[tuple[int, dict]] = []
    item_ops: list[tuple[tuple[str, str, str], ItemOutcome | None]] = []
    spool: OpenMetricsSpool | None = None
    spool_window = None
    files: list[Path] = []
    done = {"scrapes": 0, "samples": 0}

    def scrape(at_us: int) -> None:
        nonlocal spool, spool_window
        clock["at"] = at_us
        if not lo <= at_us < hi:  # before this process's stretch: the clock advances as a scrape moves it
            pe.advance(at_us)
            pe.take_unsent()
            pe.outbox.clear()
            return
        t_s = at_us // US
        window = t_s // WINDOW_S
        if window != spool_window:
            if spool is not None:
                files.append(spool.finish_window())
            spool = OpenMetricsSpool(out_dir / f"history-{window * WINDOW_S}.om.txt")
            spool_window = window
        figures: dict[tuple[str, str], dict] = defaultdict(dict)
        rows = collector.samples().rows  # what /metrics would render, as rows (no prometheus_client objects)
        for name, family_rows in rows.items():
            _note_figures(name, family_rows, figures)
        done["samples"] += spool.add(rows, t_s, families)
        for key in figures:
            figures[key]["rolling"] = key in rolling
        figures_out.append((t_s, dict(figures)))
        for out in pe.take_unsent():
            _note_item(out, tickets, item_ops)
        pe.outbox.clear()  # no producer here: SLA events and dead letters are not published
        done["scrapes"] += 1
        if counter is not None:
            with counter.get_lock():
                counter.value += 1
        if progress is not None:
            progress.update(done["scrapes"], iso(t_s))

    next_at = first
    for offset, line in enumerate(lines):
        ts = times[offset]
        if ts is None and not line.strip():
            continue
        if ts is not None:
            if next_at >= hi:
                break  # past this stretch: nothing more to scrape
            while ts > next_at and next_at < hi:
                scrape(next_at)
                next_at += step
        pe.process(line, offset)
    while next_at <= last and next_at < hi:  # the state after the last event (and any steps left)
        scrape(next_at)
        next_at += step
    if spool is not None:
        files.append(spool.finish_window())
    return {"figures": figures_out, "items": item_ops, "files": files, **done}


def _note_item(out, tickets: set[tuple[str, str]], ops: list) -> None:
    """An SLA event of a ticket SLA: a decided item is (re)recorded, a withdrawn one forgotten (None)."""
    if out.kind != "sla_events":
        return
    rec = orjson.loads(out.value)
    key = (rec.get("client"), rec.get("sla"))
    if key not in tickets or rec.get("deadline_us") is None or rec.get("start_us") is None:
        return
    ident = (*key, str(rec.get("item")))
    if rec.get("change") == "withdrawn":
        ops.append((ident, None))
        return
    stop = rec.get("stop_us")
    ops.append((ident, ItemOutcome(key[0], key[1], ident[2], rec.get("priority"), rec["start_us"] / US,
                                   rec["deadline_us"] / US, (stop if stop is not None else rec["at_us"]) / US,
                                   rec.get("outcome") == "bad")))


def _note_figures(name: str, rows: list, figures: dict) -> None:
    field_name = _FIGURES.get(name)
    if field_name is None:
        return
    ci, si = _client_sla_positions(name)
    for labels, value in rows:
        key = (None if ci is None else labels[ci], None if si is None else labels[si])
        f = figures[key]
        f[field_name] = value
        if field_name in ("up", "down"):
            f["uptime"] = True
            f["known"] = f.get("up", 0.0) + f.get("down", 0.0)


@functools.cache
def _client_sla_positions(name: str) -> tuple[int | None, int | None]:
    """Where the client and SLA labels are among the family's label values (None: not a label of it)."""
    labelnames = family_spec(name)[2]
    return tuple(labelnames.index(n) if n in labelnames else None for n in (names.CLIENT, names.SLA))


_SERIES_PARTS: dict[tuple, str] = {}
_VALUE_TEXT: dict[float, str] = {}  # value -> " " + floatToGoString(value)


class _Families:
    """Metric families as a registry, for prometheus_client's exposition."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self):
        return self.families


def _exposition(family: Metric) -> list[str]:
    """The family in prometheus_client's OpenMetrics exposition, by line (HELP, TYPE, samples..., EOF)."""
    return generate_latest(_Families(family)).decode("utf-8").split("\n")


# (name, help, type) of a family: a `Metric` is made only for what is rendered once (header, a series' part)
_UP = (names.UP, "1 if the target was scraped (the backtest's scrapes always succeed)", "gauge")
_UP_NAMES, _UP_LABELS = (names.JOB, names.INSTANCE), (names.WORKER_JOB, BACKTEST_INSTANCE)


class OpenMetricsSpool:
    """Scrapes in OpenMetrics with timestamps; the samples are spooled per metric family (OpenMetrics forbids
    interleaving families) and joined by `finish`. Every part of a line comes from prometheus_client: the family
    header and each series' name and labels are rendered once by its exposition (`generate_latest`), the values
    by `floatToGoString`. A scrape also holds `up{job="slamon", instance="backtest:9108"} 1`, as Prometheus would
    record it."""

    def __init__(self, out_path: Path, series: dict[tuple, str] | None = None) -> None:
        self.out_path = out_path
        self.dir = out_path.parent / (out_path.name + ".parts")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.files: dict[str, tuple[str, IO[str]]] = {}  # family -> (# HELP / # TYPE lines, spool file)
        # (sample name, labels) -> the line's `name{labels}` part (shared by the windows of a scrape)
        self._series: dict[tuple, str] = series if series is not None else _SERIES_PARTS

    def add(self, rows: dict[str, list[tuple[tuple[str, ...], float]]], t_s: int,
            families: Collection[str] | None = None) -> int:
        """Spool one scrape (the collector's rows by family, `EngineCollector.samples`) at `t_s`, only `families`
        when given; returns the number of samples written."""
        n = 0
        stamp = f" {t_s}\n"
        series = self._series
        values = _VALUE_TEXT
        if len(values) > 200_000:  # most values recur (counts, 0, 1): formatted once; bounded
            values.clear()
        for name, family_rows in rows.items():
            if families is not None and name not in families:
                continue
            kind, doc, labelnames = family_spec(name)
            family = (name, doc, kind)
            sample_name = name + "_total" if kind == "counter" else name
            lines = []
            for labels, value in family_rows:
                part = series.get((sample_name, labels)) or self._series_part(family, sample_name, labelnames, labels)
                text = values.get(value)
                if text is None or not value:  # 0.0 == -0.0 as keys: a zero is written by its own sign
                    text = " " + floatToGoString(value)
                    if value:
                        values[value] = text
                lines.append(part + text + stamp)
            self._file(family).writelines(lines)
            n += len(lines)
        up = _UP
        part = series.get((names.UP, _UP_LABELS)) or self._series_part(up, names.UP, _UP_NAMES, _UP_LABELS)
        self._file(up).write(part + " " + floatToGoString(1) + stamp)
        return n

    def _series_part(self, family: tuple[str, str, str], sample_name: str, labelnames,
                     labels: tuple[str, ...]) -> str:
        """The line's `name{labels}` part, as prometheus_client's exposition writes it (once per series)."""
        one = Metric(*family)
        one.samples = [Sample(sample_name, dict(zip(labelnames, labels, strict=True)), 0.0)]
        part = self._series[(sample_name, labels)] = _exposition(one)[2].rsplit(" ", 1)[0]  # without " 0.0"
        return part

    def _file(self, family: tuple[str, str, str]) -> IO[str]:
        entry = self.files.get(family[0])
        if entry is None:
            header = "".join(line + "\n" for line in _exposition(Metric(*family))[:2])
            handle = open(self.dir / f"{len(self.files):04d}.om", "w", encoding="utf-8")  # noqa: SIM115
            entry = self.files[family[0]] = (header, handle)
        return entry[1]

    def finish_window(self) -> Path:
        """Join the spooled families into the OpenMetrics file; returns its path."""
        self.finish(self.out_path)
        return self.out_path

    def finish(self, out_path: Path) -> None:
        with open(out_path, "w", encoding="utf-8") as out:
            for header, handle in self.files.values():
                handle.close()
                out.write(header)
                with open(handle.name, encoding="utf-8") as part:
                    shutil.copyfileobj(part, out)
            out.write("# EOF\n")
        shutil.rmtree(self.dir, ignore_errors=True)
