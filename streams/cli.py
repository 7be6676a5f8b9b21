"""`slamon worker | produce | topics`: the streaming subcommands. `slamon.cli` registers them with
`streams.cli.add_parsers(subparsers)`; each sets `run=` to a function taking the parsed args.

    slamon worker [--config FILE] [--wait SECONDS]
    slamon produce events.jsonl [--config FILE] [--rate N] [--topic T]
    slamon produce --generate 24 [--seed 1] [--start 2026-03-02T00:00:00Z] [--rate N]
    slamon topics create|describe [--config FILE]

Errors are `SlamonError`s (monitor.errors): a broker that does not answer within `--wait` seconds, or a Kafka
failure, is `UnavailableError` (exit 4); a bad file or setting is an input error (exit 2).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from contextlib import contextmanager

from monitor.errors import EXIT_OK, UnavailableError
from slamon.inputs import check_readable, instant, non_negative_float, positive_float, progress_enabled

CONFIG_HELP = "YAML settings file (default: $SLAMON_CONFIG); SLAMON_* environment variables override it"
WAIT_HELP = "seconds to wait for a Kafka broker to answer before giving up"
BROKER_HINT = "start Kafka, or point kafka.bootstrap_servers (SLAMON_KAFKA__BOOTSTRAP_SERVERS) at a running broker"


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("worker", help="run a streaming worker (Kafka -> engine -> /metrics)",
                              description="Run a streaming worker until SIGTERM/SIGINT: it creates the topics if "
                                          "needed, consumes events, serves /metrics and writes checkpoints.")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--wait", type=non_negative_float, default=60.0, metavar="SECONDS", help=WAIT_HELP)
    p.set_defaults(run=_worker)

    p = subparsers.add_parser("produce", help="send JSON Lines events (or generated traffic) to Kafka")
    p.add_argument("events", nargs="?", metavar="EVENTS",
                   help="JSON Lines file, or - for stdin (or give --generate instead)")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--rate", type=positive_float, metavar="N",
                   help="events per second (default: as fast as possible)")
    p.add_argument("--topic", help="topic to send to (default: the events topic of the settings)")
    p.add_argument("--generate", type=positive_float, metavar="HOURS",
                   help="send HOURS of synthetic traffic for the contracts' clients instead of a file")
    p.add_argument("--start", type=instant, metavar="TIME",
                   help="with --generate: first instant, RFC 3339 (default: now - HOURS)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="with --generate: random seed")
    p.add_argument("--contracts", metavar="FILE",
                   help="with --generate: contracts file (default: the settings' contracts)")
    p.add_argument("--wait", type=non_negative_float, default=60.0, metavar="SECONDS", help=WAIT_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=_produce)

    p = subparsers.add_parser("topics", help="create or describe the pipeline's Kafka topics")
    p.add_argument("action", choices=("create", "describe"),
                   help="create: create the missing topics and wait until they are served; describe: one JSON "
                        "line per topic")
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--wait", type=non_negative_float, default=60.0, metavar="SECONDS", help=WAIT_HELP)
    p.set_defaults(run=_topics)


def _settings(args):
    """The settings; a config file that is not YAML, or not a mapping, is a ConfigError naming its line (the file
    is read with monitor.yaml_loader first: its limits and duplicate-key check apply here too)."""
    from monitor import yaml_loader
    from streams.config import ConfigError, load_settings

    path = args.config or os.environ.get("SLAMON_CONFIG") or None
    if path is not None:
        data, _root = yaml_loader.load(yaml_loader.read_text(path, ConfigError), str(path), ConfigError)
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path}:1: expected a mapping of settings (kafka:, topics:, contracts:, ...)")
    try:
        return load_settings(args.config)
    except ConfigError:  # an input error with its message
        raise
    except ValueError as err:  # a value pydantic-settings could not even parse
        raise ConfigError(f"invalid settings{f' ({path})' if path else ''}: {' '.join(str(err).split())}") from None


def wait_for_broker(settings, timeout: float) -> None:
    """Return once a bootstrap server accepts a TCP connection; UnavailableError after `timeout` seconds.
    kafka-python would otherwise retry for a minute per client and then raise NoBrokersAvailable."""
    servers = settings.kafka.servers
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while True:
        for server in servers:
            host, _, port = server.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]") or "localhost", int(port)),
                                              timeout=max(0.2, min(5.0, deadline - time.monotonic()))):
                    return
            except ValueError:
                raise UnavailableError(f"kafka.bootstrap_servers: {server!r} is not host:port",
                                       hint=BROKER_HINT) from None
            except OSError as err:
                last = err
        if time.monotonic() >= deadline:
            reason = last.strerror or str(last) if last else "no server"
            raise UnavailableError(f"no Kafka broker answers at {','.join(servers)} "
                                   f"(waited {timeout:g}s: {reason})", hint=BROKER_HINT)
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


@contextmanager
def kafka_errors(settings):
    """kafka-python's errors and timeouts as UnavailableError (exit 4) naming the brokers."""
    from kafka.errors import KafkaError

    try:
        yield
    except (KafkaError, TimeoutError) as err:
        detail = str(err) if str(err) and str(err) != type(err).__name__ else "no answer"
        raise UnavailableError(f"Kafka at {settings.kafka.bootstrap_servers}: {type(err).__name__}: {detail}",
                               hint=BROKER_HINT) from None


def _worker(args) -> int:
    from monitor.contracts import load_contracts
    from streams.app import run_worker

    settings = _settings(args)
    load_contracts(settings.contracts)  # a bad contracts file fails now, not after the broker answered
    wait_for_broker(settings, args.wait)
    with kafka_errors(settings):
        return run_worker(settings)


def _produce(args) -> int:
    from slamon.inputs import InputError
    from streams.producer import generated_lines, produce, read_lines

    if (args.events is None) == (args.generate is None):
        raise InputError("give an events file (or -) or --generate HOURS, not both or neither")
    if args.generate is None and (args.contracts is not None or args.start is not None):
        raise InputError("--contracts and --start go with --generate")
    settings = _settings(args)
    if args.generate is not None:
        from monitor.contracts import load_contracts
        from slamon.generator_cli import checked

        contracts = load_contracts(args.contracts or settings.contracts)
        lines = checked(generated_lines(contracts, args.generate, start_us=args.start, seed=args.seed))
    else:
        if args.events != "-":
            check_readable(args.events, "events file")
        lines = read_lines(args.events)
    wait_for_broker(settings, args.wait)
    with kafka_errors(settings):
        result = produce(settings, lines, rate=args.rate, topic=args.topic, total=None,
                         progress=progress_enabled(args.no_progress))
    print(f"sent {result.sent} events ({result.bytes} bytes) in {result.seconds:.1f}s "
          f"({result.rate:.0f}/s) to {args.topic or settings.topics.events}; "
          f"{result.unkeyed} without a client key, {result.failed} failed", file=sys.stderr)
    for err in result.errors:
        print(f"  error: {err}", file=sys.stderr)
    if result.failed:
        raise UnavailableError(f"{result.failed} of {result.sent} events were not accepted by Kafka",
                               hint="see the errors above")
    return EXIT_OK


def _topics(args) -> int:
    import orjson

    from streams.topics import describe_topics, ensure_topics

    settings = _settings(args)
    wait_for_broker(settings, args.wait)
    with kafka_errors(settings):
        if args.action == "create":
            counts = ensure_topics(settings, timeout=max(args.wait, 10.0))
            for name, partitions in counts.items():
                print(f"{name}: {partitions} partitions")
            return EXIT_OK
        topics = describe_topics(settings)
    for topic in topics:
        print(orjson.dumps(topic).decode())
    return EXIT_OK
