"""Command-line options of the synthetic generator, shared by `slamon generate` and `slamon produce`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from monitor.contracts import Contracts
from monitor.durations import parse_duration_us
from monitor.events import to_us
from monitor.simulation.generator import GeneratorConfig, Scenario

SCENARIO_HELP = (
    "KIND:CLIENT:START:DURATION[:FACTOR[:SERVICE_OR_QUEUE]], KIND one of outage, staffing_drop, "
    "backlog_surge; START an offset from --start (e.g. 2h) or an RFC 3339 time. Repeatable. "
    "Example: staffing_drop:acme-retail:3h:45m:0.4:orders"
)


def add_generator_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("traffic")
    g.add_argument("--start", help="first event time, RFC 3339 (default: last Monday 00:00 UTC)")
    g.add_argument("--hours", type=float, default=24.0, help="hours of traffic (default 24)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--tickets-per-hour", type=float, default=20.0, help="per client, weekly average")
    g.add_argument("--calls-per-hour", type=float, default=60.0, help="per client, weekly average")
    g.add_argument("--agents", type=int, default=0, help="agents per queue at peak (0: sized for the load)")
    g.add_argument("--breach-rate", type=float, default=0.03, help="share of tickets that miss a deadline")
    g.add_argument("--disorder", default="0s", help="events arrive up to this late, out of order (e.g. 2m)")
    g.add_argument("--duplicates", type=float, default=0.0, help="share of events sent twice")
    g.add_argument("--scenario", action="append", default=[], metavar="SPEC", help=SCENARIO_HELP)


def config_from_args(args: argparse.Namespace, contracts: Contracts) -> GeneratorConfig:
    start = _start(args.start)
    return GeneratorConfig(
        start_us=start, duration_us=round(args.hours * 3_600_000_000), seed=args.seed,
        tickets_per_hour=args.tickets_per_hour, calls_per_hour=args.calls_per_hour, agents=args.agents,
        ticket_breach_rate=args.breach_rate, disorder_us=parse_duration_us(args.disorder),
        duplicate_rate=args.duplicates,
        scenarios=[parse_scenario(spec, start, contracts) for spec in args.scenario],
    )


def _start(text: str | None) -> int:
    if text:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if ts.tzinfo is None:
            raise SystemExit("error: --start needs an offset, e.g. 2026-11-02T00:00:00Z")
        return to_us(ts)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_us(today - timedelta(days=today.weekday()))


def parse_scenario(spec: str, start_us: int, contracts: Contracts) -> Scenario:
    parts = spec.split(":") if "T" not in spec else _split_keeping_time(spec)
    if len(parts) < 4:
        raise SystemExit(f"error: --scenario {spec!r}: expected {SCENARIO_HELP}")
    kind, client, when, duration = parts[:4]
    if kind not in ("outage", "staffing_drop", "backlog_surge"):
        raise SystemExit(f"error: --scenario {spec!r}: unknown kind {kind!r}")
    if client not in contracts.clients:
        raise SystemExit(f"error: --scenario {spec!r}: client {client!r} is not in the contracts")
    try:
        at = to_us(datetime.fromisoformat(when.replace("Z", "+00:00"))) if "T" in when else (
            start_us + parse_duration_us(when))
        factor = float(parts[4]) if len(parts) > 4 and parts[4] else None
        target = parts[5] if len(parts) > 5 else None
        length = parse_duration_us(duration)
    except ValueError as err:
        raise SystemExit(f"error: --scenario {spec!r}: {err}") from None
    return Scenario(kind, client, at, length, factor,
                    service=target if kind == "outage" else None,
                    queue=target if kind != "outage" else None)


def _split_keeping_time(spec: str) -> list[str]:
    """KIND:CLIENT:2026-11-02T09:00:00Z:DURATION... : the time itself contains colons."""
    kind, client, rest = spec.split(":", 2)
    when, _, tail = rest.partition("Z:") if "Z:" in rest else _split_offset(rest)
    return [kind, client, when + ("Z" if "Z:" in rest else ""), *tail.split(":")]


def _split_offset(rest: str) -> tuple[str, str, str]:
    # 2026-11-02T09:00:00+01:00:45m -> time is the first 25 characters
    return rest[:25], ":", rest[26:]


def write_events(events, out) -> int:
    import orjson

    n = 0
    for n, event in enumerate(events, 1):  # noqa: B007
        out.write(orjson.dumps(event) + b"\n")
    return n


def report_count(n: int) -> None:
    print(f"generated {n} events", file=sys.stderr)
