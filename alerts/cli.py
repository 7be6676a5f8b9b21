"""`slamon` subcommands for alerting: rules, alertmanager, dashboards, grafana push.

The lead wires them in monitor/cli.py with `alerts.cli.add_parsers(sub)`; each sets `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import sys


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("rules", help="generate Prometheus recording and alerting rules from contracts")
    p.add_argument("contracts", help="contracts YAML")
    p.add_argument("-o", "--output", required=True, help="directory for the *.rules.yml files")
    p.add_argument("--alerting", help="alerting config YAML (default: built-in defaults)")
    p.set_defaults(run=_rules)

    p = subparsers.add_parser("alertmanager", help="generate alertmanager.yml (routes, inhibition, receivers)")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--alerting", help="alerting config YAML (receivers; else SLAMON_* environment variables)")
    p.set_defaults(run=_alertmanager)

    p = subparsers.add_parser("dashboards", help="generate the Grafana dashboards (JSON)")
    p.add_argument("-o", "--output", required=True, help="directory for the *.json files")
    p.set_defaults(run=_dashboards)

    p = subparsers.add_parser("grafana", help="Grafana operations")
    sub = p.add_subparsers(required=True, metavar="ACTION")
    push = sub.add_parser("push", help="create/update the dashboards of DIR in a Grafana folder")
    push.add_argument("directory", metavar="DIR")
    push.add_argument("--url", required=True, help="Grafana base URL")
    push.add_argument("--token-file", required=True, help="file holding a service-account token")
    push.add_argument("--folder", default="slamon", help="folder uid and title (default: slamon)")
    push.set_defaults(run=_grafana_push)


def _alerting(path: str | None):
    from alerts.config import load_alerting

    return load_alerting(path)


def _fail(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def _rules(args: argparse.Namespace) -> int:
    from alerts.config import AlertingError
    from alerts.rules import plan, write_rules
    from monitor.contracts import ContractError, load_contracts

    try:
        contracts = load_contracts(args.contracts)
        alerting = _alerting(args.alerting)
        groups = plan(contracts, alerting)
        paths = write_rules(args.output, contracts, alerting)
    except (AlertingError, ContractError, ValueError) as err:
        return _fail(err)
    for group in groups:
        for note in group.notes:
            print(f"note: {group.name}: {note}", file=sys.stderr)
    alerts = sum(len(g.alerts) for g in groups)
    records = sum(len(g.records) for g in groups)
    print(f"wrote {len(paths)} rule files to {args.output}: {records} recording rules, {alerts} alerts",
          file=sys.stderr)
    return 0


def _alertmanager(args: argparse.Namespace) -> int:
    from alerts.alertmanager import write_alertmanager
    from alerts.config import AlertingError

    try:
        warnings = write_alertmanager(args.output, _alerting(args.alerting))
    except (AlertingError, ValueError) as err:
        return _fail(err)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _dashboards(args: argparse.Namespace) -> int:
    from alerts.dashboards import check_dashboard, dashboards, write_dashboards

    for d in dashboards():
        problems = check_dashboard(d.to_json())
        if problems:
            return _fail(ValueError(f"{d.uid}: " + "; ".join(problems)))
    paths = write_dashboards(args.output)
    print(f"wrote {len(paths)} dashboards to {args.output}", file=sys.stderr)
    return 0


def _grafana_push(args: argparse.Namespace) -> int:
    from alerts.grafana import push, read_token

    try:
        token = read_token(args.token_file)
        urls = push(args.url, token, args.directory, folder_uid=args.folder, folder_title=args.folder)
    except (OSError, ValueError) as err:
        return _fail(err)
    except Exception as err:  # grafana-client raises its own hierarchy (HTTP status, auth, timeouts)
        return _fail(RuntimeError(f"Grafana: {err}"))
    for url in urls:
        print(url)
    return 0
