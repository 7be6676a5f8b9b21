"""`slamon` subcommands for alerting: rules, alertmanager, dashboards, grafana push.

`slamon.cli` registers them with `alerts.cli.add_parsers(sub)`; each sets `run(args) -> int`. Errors are
`SlamonError`s (monitor.errors) that the root command line prints: a bad contracts or alerting file is an input
error (exit 2), an unreachable Grafana is unavailable (exit 4).
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from monitor.errors import EXIT_OK, SlamonError, UnavailableError
from slamon.inputs import InputError, cannot
from slamon.reporting import reported

ALERTING_HELP = "alerting config YAML: thresholds, receivers (default: the built-in defaults)"


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("rules", help="generate Prometheus recording and alerting rules from contracts")
    p.add_argument("contracts", metavar="CONTRACTS", help="contracts YAML")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the *.rules.yml files")
    p.add_argument("--alerting", metavar="FILE", help=ALERTING_HELP)
    p.set_defaults(run=_rules)

    p = subparsers.add_parser("alertmanager", help="generate alertmanager.yml (routes, inhibition, receivers)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--alerting", metavar="FILE",
                   help="alerting config YAML with the receivers (default: receivers from SLAMON_* environment "
                        "variables)")
    p.set_defaults(run=_alertmanager)

    p = subparsers.add_parser("dashboards", help="generate the Grafana dashboards (JSON)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the *.json files")
    p.set_defaults(run=_dashboards)

    p = subparsers.add_parser("grafana", help="Grafana operations")
    sub = p.add_subparsers(required=True, metavar="ACTION")
    push = sub.add_parser("push", help="create/update the dashboards of DIR in a Grafana folder")
    push.add_argument("directory", metavar="DIR", help="directory of dashboard JSON files (slamon dashboards -o)")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    push.add_argument("--token-file", required=True, metavar="FILE", help="file holding a service-account token")
    push.add_argument("--folder", default="slamon", help="folder uid and title")
    push.set_defaults(run=_grafana_push)


def _alerting(path: str | None):
    from alerts.config import load_alerting

    return load_alerting(path)


@reported
def _rules(args: argparse.Namespace) -> int:
    from alerts.rules import plan, write_rules
    from monitor.contracts import load_contracts

    contracts = load_contracts(args.contracts)
    alerting = _alerting(args.alerting)
    try:
        groups = plan(contracts, alerting)
        paths = write_rules(args.output, contracts, alerting)
    except ValueError as err:  # an override naming a tier or alert that does not exist
        raise InputError(str(err)) from None
    for group in groups:
        for note in group.notes:
            print(f"note: {group.name}: {note}", file=sys.stderr)
    alerts = sum(len(g.alerts) for g in groups)
    records = sum(len(g.records) for g in groups)
    print(f"wrote {len(paths)} rule files to {args.output}: {records} recording rules, {alerts} alerts",
          file=sys.stderr)
    return EXIT_OK


@reported
def _alertmanager(args: argparse.Namespace) -> int:
    from alerts.alertmanager import write_alertmanager

    alerting = _alerting(args.alerting)
    if os.path.isdir(args.output):
        raise InputError(f"cannot write {args.output}: it is a directory", hint="give -o a file name")
    try:
        warnings = write_alertmanager(args.output, alerting)
    except ValueError as err:
        raise InputError(str(err)) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


@reported
def _dashboards(args: argparse.Namespace) -> int:
    from alerts.dashboards import check_dashboard, dashboards, write_dashboards

    for d in dashboards():
        problems = check_dashboard(d.to_json())
        if problems:
            raise RuntimeError(f"generated dashboard {d.uid} is invalid: " + "; ".join(problems))
    paths = write_dashboards(args.output)
    print(f"wrote {len(paths)} dashboards to {args.output}", file=sys.stderr)
    return EXIT_OK


@reported
def _grafana_push(args: argparse.Namespace) -> int:
    from alerts.grafana import push, read_token

    if not os.path.isdir(args.directory):
        raise InputError(f"{args.directory}: not a directory of dashboards", hint="run slamon dashboards -o DIR")
    parsed = urlsplit(args.url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--url {args.url!r} is not an http(s) URL", hint="e.g. --url http://grafana:3000")
    try:
        token = read_token(args.token_file)
    except OSError as err:
        raise cannot("read", args.token_file, err, "token file") from None
    except ValueError as err:  # empty, or not text
        raise InputError(f"token file {args.token_file}: {str(err).splitlines()[0]}") from None
    try:
        urls = push(args.url, token, args.directory, folder_uid=args.folder, folder_title=args.folder)
    except FileNotFoundError as err:  # no dashboard files
        raise InputError(str(err), hint="run slamon dashboards -o DIR") from None
    except SlamonError:
        raise
    except Exception as err:  # grafana-client raises its own hierarchy (HTTP status, auth, timeouts)
        raise _grafana_error(args.url, err) from None
    for url in urls:
        print(url)
    return EXIT_OK


def _grafana_error(url: str, err: Exception) -> SlamonError:
    """A 4xx answer (bad token, bad dashboard) is an input error; no answer or a 5xx, unavailable."""
    names = {c.__name__ for c in type(err).__mro__}
    detail = " ".join(str(err).split())[:300] or type(err).__name__
    if "GrafanaClientError" in names:
        return SlamonError(f"Grafana at {url} refused the request: {detail}",
                           hint="check --token-file (a service-account token with Editor rights) and --url")
    if isinstance(err, ValueError) and "GrafanaException" not in names and "RequestException" not in names:
        return InputError(f"cannot push to {url}: {detail}")
    return UnavailableError(f"Grafana at {url} did not answer: {type(err).__name__}: {detail}",
                            hint="is Grafana running, and is --url its base URL?")
