"""`slamon store ...` and `slamon explain`: registered by `slamon.cli` with `store.cli.add_parsers(sub)`; also
`python -m store ...` on its own.

    slamon store run [--url URL] [--config FILE] [--retention 400d] [--group G]   # consume the SLA-events topic
    slamon store migrate --url URL                                                # create / upgrade the schema
    slamon store status --url URL [--format json]                                 # version, counts, offsets
    slamon store prune --url URL --retention 400d                                 # apply the retention now
    slamon store load EVENTS --url URL [--contracts F]                            # a replay's decisions (archives)
    slamon explain ITEM (--store URL | --events FILE) [--client C] [--format table|json]

The store URL: `--url`, else `$SLAMON_STORE_URL`. Retention: `--retention`, else `$SLAMON_STORE_RETENTION`,
default 400d; `none` keeps everything.
"""

from __future__ import annotations

import logging
import os
import sys

from monitor.errors import EXIT_OK

RETENTION_DEFAULT = "400d"
URL_HELP = "the store: sqlite:///path/record.db (a file) or postgresql://user@host:5432/db (default: $SLAMON_STORE_URL)"


def add_parsers(sub) -> None:
    p = sub.add_parser("store", help="the SLA record: keep every decision in a database (SQLite or PostgreSQL)",
                       description="The SLA record: a consumer of the SLA-events topic that keeps every decision, "
                                   "withdrawal and breach in SQLite or PostgreSQL, for monthly reviews "
                                   "(`slamon report --store URL`) and disputes (`slamon explain`). docs/sla-record.md")
    add_store_actions(p.add_subparsers(required=True, metavar="ACTION", dest="store_action"))
    add_explain_parser(sub)


def add_store_actions(actions) -> None:
    """run, migrate, status, prune, load (under `slamon store`, or at the top of `python -m store`)."""
    a = actions.add_parser("run", help="consume the SLA-events topic into the store until SIGTERM/SIGINT")
    _url(a)
    a.add_argument("--config", metavar="FILE", help="worker settings YAML (Kafka, topics; default: $SLAMON_CONFIG)")
    a.add_argument("--group", metavar="ID", help="consumer group (default: <app_id>-store)")
    a.add_argument("--retention", metavar="DURATION", default=None,
                   help="drop decisions older than this before the newest one, e.g. 400d; none keeps all "
                        f"(default: $SLAMON_STORE_RETENTION or {RETENTION_DEFAULT})")
    a.add_argument("--batch", type=int, default=5000, metavar="N", help="records per database transaction at most")
    a.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="seconds to wait for a Kafka broker to answer at start")
    a.set_defaults(run=_run)

    a = actions.add_parser("migrate", help="create or upgrade the store's schema")
    _url(a)
    a.set_defaults(run=_migrate)

    a = actions.add_parser("status", help="schema version, decisions held, offsets, newest decision")
    _url(a)
    a.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    a.set_defaults(run=_status)

    a = actions.add_parser("prune", help="apply the retention now")
    _url(a)
    a.add_argument("--retention", metavar="DURATION", required=True, help="e.g. 400d")
    a.set_defaults(run=_prune)

    a = actions.add_parser("load", help="put a replay's decisions into a store (an archive of events, no Kafka)")
    a.add_argument("events", metavar="EVENTS", help="JSON Lines file, or - for stdin")
    _url(a)
    _contracts(a)
    a.add_argument("--name", metavar="NAME",
                   help="the source name the store records (default: file:<EVENTS>); a store holds one source")
    a.set_defaults(run=_load)


def add_explain_parser(sub) -> None:
    p = sub.add_parser("explain", help="an item's SLA timeline: why a ticket or call counts as met or breached",
                       description="The SLA timeline of one ticket or call per SLA: created, priority changes, pauses "
                                   "and resumes, business-hours gaps, deadlines, stop, outcome and the period it "
                                   "counts in; from the store (its decisions) or from a replay of events (every "
                                   "step). A table for people, JSON for tools.")
    p.add_argument("item", metavar="ITEM", help="ticket or call id")
    p.add_argument("--store", metavar="URL", help="read the decisions from this store")
    p.add_argument("--events", metavar="FILE", help="replay this JSON Lines file (or -) and explain from it")
    p.add_argument("--client", metavar="NAME", help="the item's client (needed when two clients use the id)")
    p.add_argument("--at", metavar="TIME", help="with --events: replay up to this instant (RFC 3339)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    _contracts(p)
    p.set_defaults(run=_explain)


def _url(p) -> None:
    p.add_argument("--url", metavar="URL", default=None, help=URL_HELP)


def _contracts(p) -> None:
    p.add_argument("--contracts", metavar="FILE", default=None,
                   help="contracts YAML (default: $SLAMON_CONTRACTS, else ./examples/contracts.yaml)")


def _store_url(args) -> str:
    from store.db import StoreError

    url = args.url or os.environ.get("SLAMON_STORE_URL")
    if not url:
        raise StoreError("no store given", hint="pass --url sqlite:///path/record.db (or postgresql://...) or set "
                                                "SLAMON_STORE_URL")
    return url


def _contracts_path(args) -> str:
    return args.contracts or os.environ.get("SLAMON_CONTRACTS") or "examples/contracts.yaml"


def retention_us(text: str | None) -> int | None:
    from monitor.durations import parse_duration_us
    from store.db import StoreError

    text = text or os.environ.get("SLAMON_STORE_RETENTION") or RETENTION_DEFAULT
    if text.strip().lower() in ("none", "0", "forever"):
        return None
    try:
        return parse_duration_us(text)
    except ValueError as err:
        raise StoreError(f"--retention: {err}") from None


def _logging() -> None:
    logging.basicConfig(level=os.environ.get("SLAMON_LOG_LEVEL", "info").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)


def _run(args) -> int:
    from store.consumer import StoreConsumer
    from streams.cli import kafka_errors, wait_for_broker
    from streams.config import load_settings

    _logging()
    url = _store_url(args)
    settings = load_settings(args.config or os.environ.get("SLAMON_CONFIG") or None)
    contracts = None
    if os.path.exists(settings.contracts):  # completes records of workers older than the enriched format
        from monitor.contracts import load_contracts

        contracts = load_contracts(settings.contracts)
    consumer = StoreConsumer(settings, url, group=args.group, retention_us=retention_us(args.retention),
                             max_records=args.batch, contracts=contracts)
    wait_for_broker(settings, args.wait)
    with kafka_errors(settings):
        consumer.run()
    return EXIT_OK


def _migrate(args) -> int:
    from store.db import SCHEMA_VERSION, open_store

    with open_store(_store_url(args)) as store:
        applied = store.migrate()
        print(f"{store.url}: schema version {SCHEMA_VERSION}"
              + (f" (applied {', '.join(map(str, applied))})" if applied else " (up to date)"))
    return EXIT_OK


def _status(args) -> int:
    import orjson

    from monitor.events import format_us
    from store.db import open_store

    with open_store(_store_url(args)) as store:
        version = store.version()
        out = {"store": store.url, "schema_version": version}
        if version:
            stats = store.stats()
            out.update(stats, decisions=store.count(),
                       offsets={str(p): o for p, o in sorted(store.query(
                           "SELECT partition, next_offset FROM consumer_offsets"))},
                       topic=store.query("SELECT topic FROM store_stats")[0][0])
            if stats.get("newest_at_us") is not None:
                out["newest"] = format_us(stats["newest_at_us"])
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for key, value in out.items():
            print(f"{key:<20} {value}")
    return EXIT_OK


def _prune(args) -> int:
    from store.db import open_store

    with open_store(_store_url(args)) as store:
        store.check_schema()
        deleted = store.prune(retention_us(args.retention))
    print(f"removed {deleted} rows")
    return EXIT_OK


def _load(args) -> int:
    from monitor.contracts import load_contracts
    from slamon.inputs import open_events
    from store.db import open_store
    from store.feed import load_records, sla_records

    contracts = load_contracts(_contracts_path(args))
    with open_store(_store_url(args)) as store, open_events(args.events) as stream:
        store.migrate()
        name = args.name or ("stdin" if args.events == "-" else f"file:{os.path.abspath(args.events)}")
        done = load_records(store, name, sla_records(stream, contracts))
    print(f"{done.decided} decisions and {done.withdrawn} withdrawals applied ({done.redelivered} already there)",
          file=sys.stderr)
    return EXIT_OK


def _explain(args) -> int:
    from store.explain_cli import run_explain

    return run_explain(args, _contracts_path(args))


def main(argv: list[str] | None = None) -> int:
    """`python -m store run|migrate|status|prune|load|explain ...`: these commands alone, with the errors and exit
    codes of `slamon` (an error is one line and its hint; SLAMON_DEBUG=1 shows the traceback). It does not import
    slamon.cli, which imports this module to register the commands."""
    import argparse
    import traceback

    from monitor.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, SlamonError

    parser = argparse.ArgumentParser(prog="python -m store", description="The SLA record (docs/sla-record.md).")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    add_store_actions(sub)
    add_explain_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SlamonError as err:
        if os.environ.get("SLAMON_DEBUG", "").strip() not in ("", "0"):
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except Exception:
        traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["add_parsers", "main", "retention_us"]
