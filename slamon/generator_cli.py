"""Command-line options of the synthetic generator (`slamon generate`)."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from monitor.contracts import Contracts
from monitor.durations import parse_duration_us
from monitor.events import MAX_TS, to_us
from monitor.simulation.generator import GeneratorConfig, Scenario
from slamon.inputs import (
    InputError,
    instant,
    non_negative_float,
    non_negative_int,
    parse_instant,
    positive_float,
    share,
)

SCENARIO_KINDS = ("outage", "staffing_drop", "backlog_surge")
SCENARIO_HELP = (
    "KIND:CLIENT:START:DURATION[:FACTOR[:SERVICE_OR_QUEUE]], KIND one of outage, staffing_drop, "
    "backlog_surge; START an offset from --start (e.g. 2h) or an RFC 3339 time. Repeatable. "
    "Example: staffing_drop:acme-retail:3h:45m:0.4:orders"
)


def add_generator_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("traffic")
    g.add_argument("--start", type=instant, metavar="TIME",
                   help="first event time, RFC 3339 (default: last Monday 00:00 UTC)")
    g.add_argument("--hours", metavar="H", type=positive_float, default=24.0, help="hours of traffic")
    g.add_argument("--seed", metavar="N", type=int, default=0, help="random seed: the same seed gives the same events")
    g.add_argument("--tickets-per-hour", metavar="N", type=non_negative_float, default=20.0,
                   help="tickets per client and hour, weekly average")
    g.add_argument("--calls-per-hour", metavar="N", type=non_negative_float, default=60.0,
                   help="calls per client and hour, weekly average")
    g.add_argument("--agents", metavar="N", type=non_negative_int, default=0,
                   help="agents per queue at peak (0: sized for the load)")
    g.add_argument("--breach-rate", metavar="SHARE", type=share, default=0.03,
                   help="share of tickets that miss a deadline")
    g.add_argument("--disorder", metavar="DURATION", type=_duration, default="0s",
                   help="events arrive up to this late, out of order (e.g. 2m)")
    g.add_argument("--duplicates", metavar="SHARE", type=share, default=0.0, help="share of events sent twice")
    g.add_argument("--scenario", action="append", default=[], metavar="SPEC", help=SCENARIO_HELP)


def _duration(text: str) -> str:
    try:
        us = parse_duration_us(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 2m or 1h30m, got {text!r}") from None
    if us < 0:
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, got {text!r}")
    return text


def config_from_args(args: argparse.Namespace, contracts: Contracts) -> GeneratorConfig:
    start = _start(args.start)
    duration = round(args.hours * 3_600_000_000)
    if start + duration > to_us(MAX_TS):
        raise InputError(f"--hours {args.hours:g} from {_fmt(start)} runs past {MAX_TS.year}: events must be "
                         f"before {MAX_TS.date()}")
    return GeneratorConfig(
        start_us=start, duration_us=duration, seed=args.seed,
        tickets_per_hour=args.tickets_per_hour, calls_per_hour=args.calls_per_hour, agents=args.agents,
        ticket_breach_rate=args.breach_rate, disorder_us=parse_duration_us(args.disorder),
        duplicate_rate=args.duplicates,
        scenarios=[parse_scenario(spec, start, contracts) for spec in args.scenario],
    )


def _fmt(us: int) -> str:
    from monitor.events import format_us

    return format_us(us)


def _start(value: int | str | None) -> int:
    if isinstance(value, int):
        return value
    if value:
        try:
            return parse_instant(value)
        except ValueError as err:
            raise InputError(f"--start: {err}") from None
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_us(today - timedelta(days=today.weekday()))


_SCENARIO = re.compile(
    r"(?P<kind>[^:]*):(?P<client>[^:]*):"
    r"(?P<when>\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-]\d\d:\d\d)?|[^:]*)"
    r":(?P<rest>.*)", re.DOTALL)


def parse_scenario(spec: str, start_us: int, contracts: Contracts) -> Scenario:
    m = _SCENARIO.fullmatch(spec)
    rest = m.group("rest").split(":") if m else []
    if not m or not rest[0] or len(rest) > 3:
        raise InputError(f"--scenario {spec!r}: expected {SCENARIO_HELP}")
    kind, client, when = m.group("kind", "client", "when")
    duration, factor_text, target = (*rest, None, None)[:3]
    if kind not in SCENARIO_KINDS:
        raise InputError(f"--scenario {spec!r}: unknown kind {kind!r}", hint=f"use one of {', '.join(SCENARIO_KINDS)}")
    if client not in contracts.clients:
        raise InputError(f"--scenario {spec!r}: client {client!r} is not in the contracts",
                         hint=f"known clients: {', '.join(contracts.clients)}")
    try:
        at = parse_instant(when) if len(when) >= 16 and when[10] in "Tt " else start_us + parse_duration_us(when)
        factor = float(factor_text) if factor_text else None
        length = parse_duration_us(duration)
    except (ValueError, OverflowError) as err:
        raise InputError(f"--scenario {spec!r}: {err}") from None
    if length <= 0:
        raise InputError(f"--scenario {spec!r}: the duration must be positive")
    if factor is not None and not (factor >= 0 and math.isfinite(factor)):
        raise InputError(f"--scenario {spec!r}: the factor must be a number >= 0")
    return Scenario(kind, client, at, length, factor,
                    service=target or None if kind == "outage" else None,
                    queue=target or None if kind != "outage" else None)


def checked(events: Iterator[dict]) -> Iterator[dict]:
    """The generator's events; the generator checks its configuration when the first event is asked for:
    a ValueError then (a scenario naming a queue the client does not have) is an input error."""
    try:
        first = next(events, None)
    except ValueError as err:
        raise InputError(f"cannot generate: {err}") from None
    if first is None:
        return
    yield first
    yield from events


def write_events(events, out) -> int:
    import orjson

    n = 0
    for n, event in enumerate(events, 1):  # noqa: B007
        out.write(orjson.dumps(event) + b"\n")
    return n


def report_count(n: int) -> None:
    print(f"generated {n} events", file=sys.stderr)
