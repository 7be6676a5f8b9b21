"""`slamon worker | produce | topics`: the streaming subcommands. `slamon.cli` registers them with
`streams.cli.add_parsers(subparsers)`; each sets `run=` to a function taking the parsed args.

    slamon worker [--config FILE]
    slamon produce events.jsonl [--config FILE] [--rate N] [--topic T]
    slamon produce --generate 24 [--seed 1] [--start 2026-03-02T00:00:00Z] [--rate N]
    slamon topics create|describe [--config FILE]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("worker", help="run a streaming worker (Kafka -> engine -> /metrics)")
    p.add_argument("--config", help="YAML settings file; SLAMON_* environment variables override it")
    p.set_defaults(run=_worker)

    p = subparsers.add_parser("produce", help="send JSON Lines events (or generated traffic) to Kafka")
    p.add_argument("events", nargs="?", help="JSON Lines file, or - for stdin")
    p.add_argument("--config", help="YAML settings file")
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--topic", help="topic to send to (default: the events topic of the settings)")
    p.add_argument("--generate", type=float, metavar="HOURS",
                   help="send HOURS of synthetic traffic for the contracts' clients instead of a file")
    p.add_argument("--start", type=_instant, help="with --generate: first instant (default: now - HOURS)")
    p.add_argument("--seed", type=int, default=0, help="with --generate: random seed")
    p.add_argument("--contracts", help="with --generate: contracts file (default: the settings')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=_produce)

    p = subparsers.add_parser("topics", help="create or describe the pipeline's Kafka topics")
    p.add_argument("action", choices=("create", "describe"))
    p.add_argument("--config", help="YAML settings file")
    p.set_defaults(run=_topics)


def _instant(text: str) -> int:
    from monitor.events import to_us

    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time like 2026-03-02T00:00:00Z, got {text!r}") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs an offset, e.g. Z or +01:00")
    return to_us(ts)


def _settings(args):
    from streams.config import ConfigError, load_settings

    try:
        return load_settings(args.config)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _worker(args) -> int:
    from streams.app import run_worker

    return run_worker(_settings(args))


def _produce(args) -> int:
    import os

    from streams.producer import generated_lines, produce, read_lines

    settings = _settings(args)
    if (args.events is None) == (args.generate is None):
        print("error: give an events file (or -) or --generate HOURS", file=sys.stderr)
        return 2
    if args.generate is not None:
        from monitor.contracts import load_contracts

        contracts = load_contracts(args.contracts or settings.contracts)
        lines = generated_lines(contracts, args.generate, start_us=args.start, seed=args.seed)
        total = None
    else:
        if args.events != "-" and not os.path.isfile(args.events):
            print(f"error: cannot read {args.events}", file=sys.stderr)
            return 2
        lines = read_lines(args.events)
        total = None
    progress = not args.no_progress and (sys.stderr.isatty() or os.environ.get("SLAMON_PROGRESS") == "1")
    result = produce(settings, lines, rate=args.rate, topic=args.topic, total=total, progress=progress)
    print(f"sent {result.sent} events ({result.bytes} bytes) in {result.seconds:.1f}s "
          f"({result.rate:.0f}/s) to {args.topic or settings.topics.events}; "
          f"{result.unkeyed} without a client key, {result.failed} failed", file=sys.stderr)
    for err in result.errors:
        print(f"  error: {err}", file=sys.stderr)
    return 1 if result.failed else 0


def _topics(args) -> int:
    import orjson

    from streams.topics import describe_topics, ensure_topics

    settings = _settings(args)
    if args.action == "create":
        counts = ensure_topics(settings)
        for name, partitions in counts.items():
            print(f"{name}: {partitions} partitions")
        return 0
    for topic in describe_topics(settings):
        print(orjson.dumps(topic).decode())
    return 0
