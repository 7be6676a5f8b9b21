"""The core commands: `slamon validate | replay | import | generate`. Parsing and files here, logic in monitor/."""

from __future__ import annotations

import argparse
import os
import sys

from monitor.errors import EXIT_BREACH, EXIT_OK, NothingAcceptedError
from slamon.inputs import (
    CONTRACTS_HELP,
    InputError,
    add_contracts_option,
    check_readable,
    instant,
    open_events,
    output_stream,
    positive_int,
    with_progress,
)

FAIL_ON_BREACH_HELP = "exit with status 1 when a reported SLA period misses its target"


def add_parsers(sub) -> None:
    p = sub.add_parser("validate", help="check a contracts file",
                       description="Check a contracts file: errors name the file, the line and the field path.")
    p.add_argument("contracts", metavar="CONTRACTS", help="contracts YAML to check")
    p.set_defaults(run=run_validate)

    p = sub.add_parser("replay", help="replay JSON Lines events and print the SLA report",
                       description="Replay events through the engine the workers run and print the report of "
                                   "spec section 4 as of the newest event time (or --at).")
    p.add_argument("events", metavar="EVENTS", help="JSON Lines file, or - for stdin")
    add_contracts_option(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    p.add_argument("--at", type=instant, metavar="TIME",
                   help="report instant (RFC 3339); later events are not applied (default: the newest event time)")
    p.add_argument("--fail-on-breach", action="store_true", help=FAIL_ON_BREACH_HELP)
    add_jobs_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=run_replay)

    p = sub.add_parser("import", help="convert a public log into slamon events (JSON Lines on stdout)")
    p.add_argument("source", choices=("bpic2013",), help="the log's format: bpic2013 (BPI Challenge 2013, Volvo IT)")
    p.add_argument("path", metavar="CSV", help="the log file")
    p.add_argument("--client", default="volvo-it", help="client name given to every event")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    p.set_defaults(run=run_import)

    from slamon.generator_cli import add_generator_args

    p = sub.add_parser("generate", help="synthetic events for the contracts (JSON Lines on stdout)")
    add_contracts_option(p, help=CONTRACTS_HELP.replace("contracts YAML", "contracts YAML whose clients get traffic"))
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    add_generator_args(p)
    p.set_defaults(run=run_generate)


def add_jobs_option(p: argparse.ArgumentParser, split: str = "by ticket and call", by_items: bool = True) -> None:
    from slamon.jobs import default_jobs

    default = ("the cores available; one on two cores or fewer when the replay engine is compiled" if by_items
               else "the cores available")
    p.add_argument("--jobs", type=positive_int, default=default_jobs(by_items), metavar="N",
                   help=f"processes to replay on, the events split {split} (default: {default}); "
                        "the output is the same for any N")


def run_validate(args: argparse.Namespace) -> int:
    from monitor.contracts import load_contracts

    contracts = load_contracts(args.contracts)
    slas = sum(len(c.slas) for c in contracts.clients.values())
    print(f"{args.contracts}: ok ({len(contracts.clients)} clients, {slas} SLAs)")
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    from monitor.contracts import load_contracts
    from monitor.formats import to_csv, to_json, to_table
    from monitor.gc_tuning import tune_gc
    from slamon.jobs import replay

    contracts = load_contracts(args.contracts)
    tune_gc()
    with open_events(args.events) as stream:
        result = replay(with_progress(stream, args.events, disabled=args.no_progress), contracts, args.at,
                        jobs=args.jobs)
    print_rejections(result)
    check_accepted(result, args.events)
    render = {"table": to_table, "json": to_json, "csv": to_csv}[args.format]
    sys.stdout.write(render(result).rstrip("\n") + "\n")
    sys.stdout.flush()
    return breach_status(result.records, args.fail_on_breach)


def print_rejections(result) -> None:
    for reason, example in result.examples.items():
        print(f"rejected ({reason}): {result.rejected[reason]}, first at {example}", file=sys.stderr)


def check_accepted(result, source: str) -> None:
    """Raise NothingAcceptedError (exit 3) when the replay accepted no event: an empty report would look
    like a quiet month."""
    if result.accepted:
        return
    name = "stdin" if source == "-" else source
    if not result.lines:
        raise NothingAcceptedError(f"no events in {name}: the input is empty",
                                   hint="give a JSON Lines file of events (spec section 1), e.g. from slamon generate")
    rejected = sum(result.rejected.values())
    parts = [f"{count} {reason}" for reason, count in sorted(result.rejected.items())]
    if result.after_at:
        parts.append(f"{result.after_at} after --at")
    detail = ", ".join(parts) or "no events on the lines"
    first = next(iter(result.examples.values()), None)
    raise NothingAcceptedError(
        f"no event accepted from {name} ({result.lines} lines: {detail})"
        + (f"; first rejection at {first}" if first and rejected else ""),
        hint="events are JSON objects, one per line, of clients in the contracts (spec section 1)"
        if not result.after_at else "--at is before every event")


def breach_status(records, fail_on_breach: bool) -> int:
    """EXIT_BREACH if asked and a record misses its target, else EXIT_OK."""
    if not fail_on_breach:
        return EXIT_OK
    missed = [r for r in records if not r.met]
    if not missed:
        return EXIT_OK
    names = sorted({f"{r.client}/{r.sla}" for r in missed})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    print(f"breach: {len(missed)} SLA period(s) missed their target ({shown})", file=sys.stderr)
    return EXIT_BREACH


def run_import(args: argparse.Namespace) -> int:
    import csv

    import orjson

    from monitor.importers.bpic2013 import convert

    check_readable(args.path, "log file")
    try:
        with output_stream(args.output) as out:
            for event in convert(args.path, client=args.client):
                out.write(orjson.dumps(event) + b"\n")
    except (ValueError, csv.Error) as err:  # UnicodeDecodeError is a ValueError
        _remove_partial(args.output)
        raise InputError(f"cannot import {args.path}: {_one_line(err)}",
                         hint="expected the VINST incidents CSV of BPI Challenge 2013 (examples/README.md)") from None
    return EXIT_OK


def run_generate(args: argparse.Namespace) -> int:
    from monitor.contracts import load_contracts
    from monitor.simulation.generator import generate
    from slamon.generator_cli import checked, config_from_args, report_count, write_events

    contracts = load_contracts(args.contracts)
    config = config_from_args(args, contracts)
    try:
        with output_stream(args.output) as out:
            report_count(write_events(checked(generate(contracts, config)), out))
    except InputError:
        _remove_partial(args.output)
        raise
    return EXIT_OK


def _remove_partial(path: str | None) -> None:
    if path not in (None, "-") and os.path.isfile(path):
        os.unlink(path)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
