"""`slamon report`: the monthly SLA review (HTML, PDF or CSV). The lead wires it in with
`review_cli.add_parsers(sub)` in `slamon.cli._parser`."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime

from monitor.events import to_us

_TS = re.compile(rb'"ts"\s*:\s*"([^"]{10,40})"')


def add_parsers(sub) -> None:
    from slamon.cli import DEFAULT_CONTRACTS, _instant

    p = sub.add_parser(
        "report", help="monthly SLA review per client (HTML, PDF or CSV)",
        description="The monthly SLA review for account managers: per client and SLA, compliance vs target, "
                    "met/missed, trend, breaches with ticket ids, penalty credits and an executive summary. "
                    "Every figure equals `slamon replay --at T` for the month's contract periods.")
    p.add_argument("events", help="JSON Lines file, or - for stdin")
    p.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to review, e.g. 2026-11")
    p.add_argument("--client", action="append", default=None,
                   help="review only this client (repeatable; default: every client)")
    p.add_argument("--contracts", default=DEFAULT_CONTRACTS)
    p.add_argument("--format", choices=("html", "pdf", "csv"), default="html")
    p.add_argument("-o", "--output", help="file to write (default stdout)")
    p.add_argument("--trend", type=int, default=6, metavar="N", help="months in the trend charts (default 6)")
    p.add_argument("--at", type=_instant,
                   help="review instant (RFC 3339); default: the end of the month's last contract period, or "
                        "the newest event time if the events stop earlier (month to date)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_report)


def newest_event_us(path: str) -> int | None:
    """The newest `ts` in a JSON Lines file, by a fast scan (no JSON decoding): the review instant of a
    month the events do not cover completely. Unparseable times are skipped (the replay rejects them)."""
    best_z: dict[int, bytes] = {}  # UTC times of one length compare as text
    newest: int | None = None
    with open(path, "rb") as f:
        for line in f:
            m = _TS.search(line)
            if not m:
                continue
            ts = m.group(1)
            if ts.endswith(b"Z"):
                if ts > best_z.get(len(ts), b""):
                    best_z[len(ts)] = ts
                continue
            newest = _max_us(newest, ts)
    for ts in best_z.values():
        newest = _max_us(newest, ts)
    return newest


def _max_us(current: int | None, ts: bytes) -> int | None:
    try:
        parsed = datetime.fromisoformat(ts.decode().replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError):
        return current
    if parsed.tzinfo is None:
        return current
    us = to_us(parsed)
    return us if current is None or us > current else current


def run_report(args) -> int:
    from monitor.contracts import load_contracts
    from monitor.engine import Engine
    from monitor.gc_tuning import tune_gc
    from monitor.replay import replay_lines
    from monitor.review.figures import ReviewError, build_review, parse_month, review_at
    from monitor.review.render import ChromiumMissing, PdfError, html_to_pdf, render_csv, render_html
    from slamon.cli import _open_events, _with_progress

    if args.format == "pdf" and not args.output and sys.stdout.isatty():
        print("error: --format pdf writes binary data: give -o FILE (or redirect stdout)", file=sys.stderr)
        return 2
    contracts = load_contracts(args.contracts)
    try:
        parse_month(args.period)
        for name in args.client or ():
            if name not in contracts.clients:
                raise ReviewError(f"client {name!r} is not in {args.contracts} (known: {', '.join(contracts.clients)})")
    except ReviewError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    spool = None
    path = args.events
    try:
        if path == "-":  # read twice (newest time, then replay): keep stdin in a temporary file
            spool = tempfile.NamedTemporaryFile(prefix="slamon-report-", suffix=".jsonl", delete=False)  # noqa: SIM115
            with _open_events("-") as stream:
                shutil.copyfileobj(stream, spool)
            spool.close()
            path = spool.name
        if args.at is not None:
            at = args.at
        else:
            newest = newest_event_us(path) if os.path.exists(path) else None
            if newest is None and os.path.exists(path):
                print(f"error: no events in {args.events}", file=sys.stderr)
                return 2
            at = review_at(contracts, args.period, args.client, newest)
        tune_gc()
        engine = Engine(contracts)
        with _open_events(path) as stream:
            result = replay_lines(_with_progress(stream, path, disabled=args.no_progress), contracts, at, engine)
        review = build_review(result, engine, args.period, args.client, trend=args.trend)
    except ReviewError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if spool is not None:
            os.unlink(spool.name)
    for reason, example in result.examples.items():
        print(f"rejected ({reason}): {result.rejected[reason]}, first at {example}", file=sys.stderr)
    if args.format == "csv":
        data = render_csv(review).encode()
    else:
        html = render_html(review)
        if args.format == "html":
            data = html.encode()
        else:
            try:
                data = html_to_pdf(html)
            except (ChromiumMissing, PdfError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 3
    if args.output:
        with open(args.output, "wb") as out:
            out.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m slamon.review_cli report ...` until `slamon` wires the subcommand in."""
    parser = argparse.ArgumentParser(prog="slamon")
    add_parsers(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
