"""`slamon ingest` and `slamon probe`. The root CLI registers them with `ingest.cli.add_parsers(sub)`;
`python -m ingest ...` runs them on their own.

    slamon ingest --config gateway.yaml [--listen HOST:PORT]
    slamon probe --config probes.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from monitor.contracts import ContractError
from monitor.errors import EXIT_UNAVAILABLE, SlamonError


def add_parsers(sub) -> None:
    p = sub.add_parser("ingest", help="webhook gateway: vendor events -> spec events -> Kafka (ingest/README.md)")
    p.add_argument("--config", required=True, help="gateway config (YAML, version: 1)")
    p.add_argument("--listen", help="host:port to listen on (overrides the config's `listen`)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="log level")
    p.set_defaults(run=_ingest)

    p = sub.add_parser("probe", help="HTTP/TCP checks on the contract's probe interval -> probe events")
    p.add_argument("--config", required=True, help="probe config (YAML, version: 1)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="log level")
    p.set_defaults(run=_probe)


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLogger().level))


def _ingest(args) -> int:
    from ingest.config import load_config
    from ingest.gateway import serve

    overrides = {"listen": args.listen} if args.listen else {}
    config = load_config(args.config, **overrides)
    _logging(args.log_level)
    run_loop(serve(config), config.event_loop)
    return 0


def run_loop(main, event_loop: str = "uvloop"):
    """asyncio.run(main) on uvloop (libuv's event loop, in Cython) when asked for and installed, else on
    asyncio's own loop."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            logging.getLogger("slamon.ingest").warning("uvloop is not installed: running on asyncio's loop")
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)
    return asyncio.run(main)


def _probe(args) -> int:
    from ingest.probe import load_probe_config, run_probes

    config = load_probe_config(args.config)
    _logging(args.log_level)
    asyncio.run(run_probes(config))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest")
    add_parsers(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ContractError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SlamonError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # the port is taken, a file cannot be read
        print(f"error: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
