"""`slamon backtest` on the command line: arguments, and the result as tables (or JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

from alerts.backtest import BacktestError
from alerts.backtest.evaluation import BacktestResult, run_backtest
from alerts.backtest.scoring import SLA_CATEGORIES, Settings, iso

US = 1_000_000


def add_parsers(sub) -> None:
    from slamon.inputs import add_contracts_option

    p = sub.add_parser(
        "backtest", help="evaluate the generated alert rules over a replayed history with real Prometheus",
        description="Replays the events, writes the workers' metric series at every scrape step, backfills "
                    "them into a Prometheus TSDB, evaluates the generated alerting rules (their recording rules "
                    "inlined) with real Prometheus, one range query per alert, and scores the alerts against "
                    "the breaches the engine saw. Progress bars with an ETA on stderr when it is a terminal.")
    p.add_argument("events", help="JSON Lines file, or - for stdin")
    add_contracts_option(p)
    p.add_argument("--alerting", metavar="FILE", help="alerting config (default: the built-in defaults)")
    p.add_argument("--compare", metavar="FILE", help="a second alerting config, evaluated side by side")
    p.add_argument("--step", default="60s", help="scrape step and rule evaluation interval (default 60s)")
    p.add_argument("--horizon", default="24h",
                   help="an alert predicts a breach at most this long after it started (default 24h)")
    p.add_argument("--grace", default="1h",
                   help="... and at most this long after it stopped firing (default 1h)")
    p.add_argument("--min-volume", type=float, default=20,
                   help="decisions in the period before a missed period counts as a breach (default 20)")
    p.add_argument("--uptime-min-volume", default="1h", help="probe-covered time, for uptime SLAs (default 1h)")
    p.add_argument("--merge-gap", default="1h", help="a recovery shorter than this continues the breach")
    p.add_argument("--warm-up", default="24h",
                   help="scoring of an SLA begins at the first period boundary in the history or this long after "
                        "its start, whichever is first (default 24h; 0: from the start)")
    p.add_argument("--item-lead", default="0s",
                   help="an item warning counts (recall) when it came at least this long before the deadline ...")
    p.add_argument("--item-lead-share", type=float, default=0.25,
                   help="... and with at least this share of the item's allowed time left (default 0.25)")
    p.add_argument("--burn-window", default="1h", help="a budget-burn episode: --burn-share of the period's "
                   "error budget spent within this window (default 1h)")
    p.add_argument("--burn-share", type=float, default=0.02, help="(default 0.02: 2 %%, the page-fast tier)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    p.add_argument("--keep", metavar="DIR", help="keep the work directory (OpenMetrics, TSDBs, rule layers) here")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars on stderr (they are drawn only when stderr is a terminal)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes for the scrape and the TSDB backfill (default: the CPUs, at most 2)")
    p.add_argument("--method", choices=("inline", "backfill"), default="inline",
                   help="inline: recording rules inlined into one range query per alert (default); backfill: "
                        "every recording rule backfilled with promtool first (the former method, slow; "
                        "for comparisons)")
    p.set_defaults(run=run_cli)


def settings_from_args(args) -> Settings:
    from monitor.durations import parse_duration_us

    try:
        settings = Settings(
            step_s=parse_duration_us(args.step) // US, horizon_s=parse_duration_us(args.horizon) // US,
            grace_s=parse_duration_us(args.grace) // US,
            min_volume=args.min_volume, uptime_min_volume_s=parse_duration_us(args.uptime_min_volume) // US,
            merge_gap_s=parse_duration_us(args.merge_gap) // US,
            warm_up_s=0 if args.warm_up.strip() == "0" else parse_duration_us(args.warm_up) // US,
            item_min_lead_s=parse_duration_us(args.item_lead) / US, item_min_lead_share=args.item_lead_share,
            burn_window_s=parse_duration_us(args.burn_window) // US, burn_share=args.burn_share)
    except ValueError as err:
        raise BacktestError(str(err)) from None
    if settings.step_s < 1:
        raise BacktestError("--step must be at least 1s")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise BacktestError("--jobs must be at least 1")
    return settings


def run_cli(args) -> int:
    from alerts.config import load_alerting
    from alerts.processes import stop_children_on_sigterm
    from monitor.contracts import load_contracts
    from slamon.inputs import open_events

    settings = settings_from_args(args)
    contracts = load_contracts(args.contracts)
    configs = [(Path(args.alerting).stem if args.alerting else "defaults", load_alerting(args.alerting))]
    if args.compare:
        name = Path(args.compare).stem
        if name == configs[0][0]:
            name += " (compare)"
        configs.append((name, load_alerting(args.compare)))
    stop_children_on_sigterm()  # a killed backtest stops its Prometheus
    stream = open_events(args.events)
    try:
        result = run_backtest(_lines(stream), contracts, configs, settings,
                              workdir=Path(args.keep) if args.keep else None,
                              progress=not args.no_progress and sys.stderr.isatty(), jobs=args.jobs,
                              method=args.method)
    finally:
        stream.close()
    text = to_table(result) if args.format == "table" else json.dumps(result.as_dict(), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


def _lines(stream) -> Iterator[bytes]:
    yield from stream


# --- rendering ----------------------------------------------------------------------------------------------

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
             f"{h.samples:,} samples, {len(h.breaches)} breaches, {sum(p.missed for p in h.periods)} periods "
             f"ending below objective, {len(h.burns)} budget-burn episodes, {len(h.items):,} decided items", ""]
    names = [c.name for c in result.configs]
    sums = [c.summary() for c in result.configs]
    rows = [("", *names)]
    for label, key, fmt in (
        ("alert rules", "alert_rules", str), ("lost periods (after warm-up)", "breaches", str),
        ("  alerted before the loss", "detected", str), ("  paged before the loss", "paged_before_loss", str),
        ("  missed", "missed", str), ("recall", "recall", _pct), ("page recall", "page_recall", _pct),
        ("budget-burn episodes", "burn_episodes", str), ("  alerted", "burn_episodes_alerted", str),
        ("SLA-risk alert episodes", "alert_episodes", str), ("  true positives", "true_positives", str),
        ("  late (SLA already in breach)", "late", str), ("  false alarms", "false_alarms", str),
        ("precision", "precision", _pct),
    ):
        rows.append((label, *[fmt(s[key]) for s in sums]))
    for label, key in (("lead time min", "min"), ("lead time p50", "p50"), ("lead time max", "max")):
        rows.append((label, *[_dur(s["lead_time_seconds"][key]) if s["lead_time_seconds"] else "-" for s in sums]))
    rows.append(("'already missed' alerts: confirmed / false",
                 *[f"{s['already_missed']['confirmed']} / {s['already_missed']['false_alarm']}" for s in sums]))
    for label, key, fmt in (
        ("items decided (after warm-up)", "items", str), ("  breached", "breached", str),
        ("  breached, warned in time", "breached_warned_in_time", str), ("item recall (in time)", "recall_in_time",
                                                                         _pct),
        ("  warned", "warned", str), ("  warned, then breached", "warned_then_breached", str),
        ("  warned, then met (saved or not at risk)", "met_after_warning", str), ("item precision", "precision", _pct),
    ):
        rows.append((label, *[fmt(s["items"][key]) if s["items"] else "-" for s in sums]))
    rows.append(("warm-up episodes (not scored)", *[str(s["warm_up_episodes"]) for s in sums]))
    rows.append(("pipeline/data alerts (not scored)", *[str(s["not_scored_episodes"]) for s in sums]))
    lines += _grid(rows)
    for c in result.configs:
        lines += ["", f"[{c.name}] per alert"]
        rows = [("alert", "level", "class", "fired", "TP", "late", "false", "confirmed", "met after", "no item",
                 "warm-up", "lead p50", "item precision")]
        for r in c.per_alert():
            lead = r["lead_time_seconds"]
            ip = r.get("item_precision")
            rows.append((r["alert"], r["severity"], r["class"], str(r["fired"]), str(r["true_positives"]),
                         str(r["late"]), str(r["false_alarms"]) if r["category"] in SLA_CATEGORIES else "n/a",
                         str(r["confirmed"]), str(r["met_after_warning"]), str(r["no_item"]), str(r["warm_up"]),
                         _dur(lead["p50"]) if lead else "-",
                         f"{_pct(ip['precision'])} of {ip['warned']}" if ip else "-"))
        lines += _grid(rows)
        lines += ["", f"[{c.name}] notifications per client per week"]
        rows = [("client", "week", "pages", "tickets", "info")]
        for r in c.load():
            rows.append((r["client"], r["week"], str(r["page"]), str(r["ticket"]), str(r["info"])))
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
    lost = result.configs[0].lost if result.configs else []
    if lost:
        lines += ["", "lost periods (ending below objective)"]
        rows = [("client", "sla", "period from", "lost at", *[f"lead ({n})" for n in names])]
        for i, p in enumerate(lost):
            leads = [(_dur(c.detected[i][0]) + " " + c.detected[i][1]) if i in c.detected else "MISSED"
                     for c in result.configs]
            rows.append((p.client, p.sla, iso(p.start_s), iso(p.lost_s), *leads))
        lines += _grid(rows)
    if result.timings:
        lines += ["", "timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
                  + (f" ({result.queries} range queries for {sum(c.rules for c in result.configs)} alert rules)"
                     if result.queries else "")]
    return "\n".join(lines)


def _grid(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
