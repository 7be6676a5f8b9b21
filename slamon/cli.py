"""`slamon` command line: the root parser. Each package registers its commands with `add_parsers(sub)`; this
module builds the parser, runs the command and turns every error into a message and a documented exit code.
It never shows a traceback unless SLAMON_DEBUG=1."""

from __future__ import annotations

import argparse

from monitor.errors import EXIT_CODES
from slamon.inputs import resolve_contracts_default
from slamon.parser import Parser
from slamon.reporting import report

EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES) + (
    "\n\nContracts: --contracts FILE, else $SLAMON_CONTRACTS, else ./examples/contracts.yaml. "
    "`slamon COMMAND --help` describes each command.")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="slamon", description="Streaming SLA monitor for BPO operations.", epilog=EPILOG)
    sub = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    add_package_parsers(sub)
    return parser


def add_package_parsers(sub) -> None:
    """Every package's commands: the core (validate, replay, import, generate), then the adapters (Kafka
    workers, the ingest gateway and prober, alerting, reports, the SLA store, backtest), which live with their
    code."""
    from alerts.backtest.cli import add_parsers as backtest_parsers
    from alerts.cli import add_parsers as alerts_parsers
    from ingest.cli import add_parsers as ingest_parsers
    from slamon.commands import add_parsers as core_parsers
    from slamon.review_cli import add_parsers as review_parsers
    from store.cli import add_parsers as store_parsers
    from streams.cli import add_parsers as streams_parsers

    core_parsers(sub)
    streams_parsers(sub)
    ingest_parsers(sub)
    alerts_parsers(sub)
    review_parsers(sub)
    store_parsers(sub)
    backtest_parsers(sub)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        resolve_contracts_default(args)
        return args.run(args)
    except SystemExit:  # argparse (exit 2 after its usage message), --help (0)
        raise
    except BaseException as err:  # every error becomes a message and an exit code
        return report(err)


if __name__ == "__main__":
    raise SystemExit(main())
