"""`slamon backtest`: the generated alert rules evaluated by real Prometheus over a replayed history.

    slamon backtest EVENTS.jsonl --contracts C.yaml [--alerting A.yaml] [--compare B.yaml]

| module | what |
|---|---|
| `history.py` | replay the events through a worker's engine, scrape its collector every step, write OpenMetrics |
| `evaluation.py` | `run_backtest`: backfill the TSDB, recording rules by layer, alert expressions by `query_range` |
| `scoring.py` | pure: breaches from the figures, alert episodes, true positives / late / false alarms, lead times |
| `cli.py` | `add_parsers` (the `backtest` subcommand), the tables |

The Prometheus process and promtool are `alerts.prometheus_process` (the tests use the same wrapper).
"""

from __future__ import annotations

from monitor.errors import SlamonError


class BacktestError(SlamonError):
    """The backtest's input cannot be used (no readable event times, bad settings, rules reading each other in
    a cycle). Prometheus and promtool failures are `alerts.processes.ServiceError` (exit code: unavailable)."""
