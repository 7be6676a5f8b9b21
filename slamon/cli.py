"""`slamon` command line. Subcommands are thin: parsing, files and progress here; logic in the modules."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from monitor.contracts import ContractError, load_contracts
from monitor.events import to_us
from monitor.gc_tuning import tune_gc

DEFAULT_CONTRACTS = os.environ.get("SLAMON_CONTRACTS", "examples/contracts.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ContractError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `slamon replay ... | head`
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slamon", description="Streaming SLA monitor for BPO operations")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a contracts file")
    p.add_argument("contracts")
    p.set_defaults(run=_validate)

    p = sub.add_parser("replay", help="replay JSON Lines events and print the SLA report")
    p.add_argument("events", help="JSON Lines file, or - for stdin")
    p.add_argument("--contracts", default=DEFAULT_CONTRACTS)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--at", type=_instant, help="report instant (RFC 3339); later events are ignored")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_replay)

    p = sub.add_parser("import", help="convert a public log into slamon events (JSON Lines on stdout)")
    p.add_argument("source", choices=("bpic2013",))
    p.add_argument("path")
    p.add_argument("--client", default="volvo-it")
    p.add_argument("-o", "--output", help="file to write (default stdout)")
    p.set_defaults(run=_import)

    from slamon.generator_cli import add_generator_args

    p = sub.add_parser("generate", help="synthetic events for the contracts (JSON Lines on stdout)")
    p.add_argument("--contracts", default=DEFAULT_CONTRACTS)
    p.add_argument("-o", "--output", help="file to write (default stdout)")
    add_generator_args(p)
    p.set_defaults(run=_generate)

    _add_adapter_parsers(sub)
    return parser


def _add_adapter_parsers(sub) -> None:
    """Commands of the adapters (Kafka workers, alerting, reports) live with their code."""
    from alerts.backtest import add_parsers as backtest_parsers
    from alerts.cli import add_parsers as alerts_parsers
    from slamon.review_cli import add_parsers as review_parsers
    from streams.cli import add_parsers as streams_parsers

    streams_parsers(sub)
    alerts_parsers(sub)
    review_parsers(sub)
    backtest_parsers(sub)


def _instant(text: str) -> int:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an RFC 3339 time like 2026-11-30T23:59:59Z, got {text!r}") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs an offset, e.g. Z or +01:00")
    return to_us(ts)


def _validate(args) -> int:
    contracts = load_contracts(args.contracts)
    slas = sum(len(c.slas) for c in contracts.clients.values())
    print(f"{args.contracts}: ok ({len(contracts.clients)} clients, {slas} SLAs)")
    return 0


def _replay(args) -> int:
    from monitor.formats import to_csv, to_json, to_table
    from monitor.replay import replay_lines

    contracts = load_contracts(args.contracts)
    tune_gc()
    with _open_events(args.events) as stream:
        lines = _with_progress(stream, args.events, disabled=args.no_progress)
        result = replay_lines(lines, contracts, args.at)
    render = {"table": to_table, "json": to_json, "csv": to_csv}[args.format]
    sys.stdout.write(render(result).rstrip("\n") + "\n")
    for reason, example in result.examples.items():
        print(f"rejected ({reason}): {result.rejected[reason]}, first at {example}", file=sys.stderr)
    return 0


def _open_events(path: str) -> BinaryIO:
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    try:
        return open(path, "rb")
    except OSError as err:
        raise SystemExit(f"error: cannot read {path}: {err.strerror}") from None


def _with_progress(stream: BinaryIO, path: str, disabled: bool) -> Iterator[bytes]:
    """Lines of the stream, with a byte-based progress bar on stderr for large files."""
    size = Path(path).stat().st_size if path != "-" else None
    if disabled or (not sys.stderr.isatty() and os.environ.get("SLAMON_PROGRESS") != "1"):
        yield from stream
        return
    from tqdm import tqdm

    with tqdm(total=size, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
              disable=size is not None and size < 5_000_000) as bar:
        for line in stream:
            bar.update(len(line))
            yield line


def _import(args) -> int:
    import orjson

    from monitor.importers.bpic2013 import convert

    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        for event in convert(args.path, client=args.client):
            out.write(orjson.dumps(event) + b"\n")
    finally:
        if args.output:
            out.close()
    return 0


def _generate(args) -> int:
    from monitor.simulation.generator import generate
    from slamon.generator_cli import config_from_args, report_count, write_events

    contracts = load_contracts(args.contracts)
    config = config_from_args(args, contracts)
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        report_count(write_events(generate(contracts, config), out))
    finally:
        if args.output:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
