"""`slamon report`: the monthly SLA review (HTML, PDF or CSV), registered by `slamon.cli` with
`review_cli.add_parsers(sub)`."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from datetime import datetime

from monitor.events import to_us

_TS = re.compile(rb'"ts"\s*:\s*"([^"]{10,40})"')


def add_parsers(sub) -> None:
    from slamon.commands import FAIL_ON_BREACH_HELP, add_jobs_option
    from slamon.inputs import add_contracts_option, instant, positive_int

    p = sub.add_parser(
        "report", help="monthly SLA review per client (HTML, PDF or CSV)",
        description="The monthly SLA review for account managers: per client and SLA, compliance vs target, "
                    "met/missed, trend, breaches with ticket ids, penalty credits and an executive summary. "
                    "Every figure equals `slamon replay --at T` for the month's contract periods.")
    p.add_argument("events", metavar="EVENTS", nargs="?",
                   help="JSON Lines file, or - for stdin (not with --store)")
    p.add_argument("--store", metavar="URL",
                   help="build the review from the SLA record instead of events: sqlite:///PATH or postgresql://... "
                        "(docs/sla-record.md)")
    p.add_argument("--period", required=True, metavar="YYYY-MM", help="the month to review, e.g. 2026-11")
    p.add_argument("--client", action="append", default=None,
                   help="review only this client (repeatable; default: every client)")
    add_contracts_option(p)
    p.add_argument("--format", choices=("html", "pdf", "csv"), default="html", help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    p.add_argument("--commentary", metavar="FILE",
                   help="the account team's commentary (UTF-8 text) to print in the HTML and PDF: text before any "
                        "`# CLIENT` line on the cover, text under it in that client's section (docs/monthly-review.md)")
    p.add_argument("--trend", type=positive_int, default=6, metavar="N", help="months in the trend charts")
    p.add_argument("--at", type=instant, metavar="TIME",
                   help="review instant (RFC 3339); default: the end of the month's last contract period, or "
                        "the newest event time if the events stop earlier (month to date)")
    p.add_argument("--fail-on-breach", action="store_true",
                   help=FAIL_ON_BREACH_HELP.replace("a reported SLA period", "an SLA of the reviewed month"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_jobs_option(p, "by client", by_items=False)
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


def read_commentary(path: str, contracts) -> str:
    """The commentary file's text, read before the (long) replay: a missing, unreadable or non-UTF-8 file, or a
    `# CLIENT` heading naming no client of the contracts (its text would be lost), is an InputError (exit 2)."""
    from monitor.review.render import parse_commentary
    from slamon.inputs import InputError, cannot

    if os.path.isdir(path):
        raise InputError(f"cannot read commentary file {path}: it is a directory",
                         hint="give a text file (docs/monthly-review.md, 'Commentary file')")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise cannot("read", path, err, "commentary file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"commentary file {path} is not UTF-8 text (byte {err.start})",
                         hint="save it as UTF-8 plain text") from None
    unknown = [key for key in parse_commentary(text) if key and key not in contracts.clients]
    if unknown:
        raise InputError(f"commentary file {path}: no client {unknown[0]!r} in the contracts "
                         f"(a line starting with # names the client its text is for)",
                         hint=f"known clients: {', '.join(contracts.clients)}")
    return text


def run_report(args) -> int:
    from monitor.contracts import load_contracts
    from monitor.errors import NothingAcceptedError
    from monitor.gc_tuning import tune_gc
    from monitor.review.figures import ReviewError, parse_month, review_at
    from slamon import jobs
    from slamon.commands import check_accepted, print_rejections
    from slamon.inputs import InputError, open_events, with_progress

    if args.format == "pdf" and not args.output and sys.stdout.isatty():
        raise InputError("--format pdf writes binary data", hint="give -o FILE (or redirect stdout)")
    if (args.events is None) == (args.store is None):
        raise InputError("give either EVENTS or --store URL", hint="slamon report EVENTS --period YYYY-MM, or "
                                                                   "slamon report --store URL --period YYYY-MM")
    parse_month(args.period)
    contracts = load_contracts(args.contracts)
    for name in args.client or ():
        if name not in contracts.clients:
            raise ReviewError(f"client {name!r} is not in {args.contracts} (known: {', '.join(contracts.clients)})")
    args.commentary_text = read_commentary(args.commentary, contracts) if args.commentary else None
    if args.store is not None:
        from store.report import review_from_store

        review = review_from_store(args.store, args.period, contracts, args.client, trend=args.trend, at_us=args.at)
        return _write_review(review, args)
    spool = None
    path = args.events
    try:
        if path == "-":  # read twice (newest time, then replay): keep stdin in a temporary file
            spool = tempfile.NamedTemporaryFile(prefix="slamon-report-", suffix=".jsonl", delete=False)  # noqa: SIM115
            with open_events("-") as stream:
                shutil.copyfileobj(stream, spool)
            spool.close()
            path = spool.name
        with open_events(path) as stream:  # a missing file or a directory fails here, before the scan
            pass
        if args.at is not None:
            at = args.at
        else:
            newest = newest_event_us(path)
            if newest is None:
                raise NothingAcceptedError(f"no event with a valid time in "
                                           f"{'stdin' if args.events == '-' else args.events}",
                                           hint="events are JSON Lines with an RFC 3339 `ts` (spec section 1)")
            at = review_at(contracts, args.period, args.client, newest)
        tune_gc()
        with open_events(path) as stream:  # a ReviewEngine per job: an Engine that also keeps queue/channel tallies
            result, review = jobs.review(with_progress(stream, path, disabled=args.no_progress), contracts, at,
                                         args.period, args.client, trend=args.trend, jobs=args.jobs)
        print_rejections(result)
        check_accepted(result, args.events)
    finally:
        if spool is not None:
            os.unlink(spool.name)
    return _write_review(review, args)


def _write_review(review, args) -> int:
    from monitor.errors import EXIT_BREACH, EXIT_OK
    from monitor.review.render import html_to_pdf, render_csv, render_html
    from slamon.inputs import output_stream

    if args.format == "csv":
        data = render_csv(review).encode()
    else:
        html = render_html(review, commentary=getattr(args, "commentary_text", None))
        data = html.encode() if args.format == "html" else html_to_pdf(html)  # ChromiumMissing, PdfError: exit 4
    with output_stream(args.output) as out:
        out.write(data)
    if args.fail_on_breach:
        missed = [f"{c.client}/{s.sla}" for c in review.clients for s in c.slas if s.has_data and not s.met]
        if missed:
            print(f"breach: {len(missed)} SLA(s) missed their target in {args.period} ({', '.join(missed[:5])}"
                  f"{' and more' if len(missed) > 5 else ''})", file=sys.stderr)
            return EXIT_BREACH
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m slamon.review_cli report ...`: the `report` command alone, with the errors and exit codes of
    `slamon` (slamon.reporting)."""
    from slamon.inputs import resolve_contracts_default
    from slamon.parser import Parser
    from slamon.reporting import report

    parser = Parser(prog="slamon")
    add_parsers(parser.add_subparsers(required=True, metavar="COMMAND"))
    try:
        args = parser.parse_args(argv)
        resolve_contracts_default(args)
        return args.run(args)
    except SystemExit:
        raise
    except BaseException as err:
        return report(err)


if __name__ == "__main__":
    raise SystemExit(main())
