"""`slamon backtest`: the generated alert rules evaluated by real Prometheus over a replayed history.

    slamon backtest EVENTS.jsonl --contracts C.yaml [--alerting A.yaml] [--compare B.yaml]

| module | what |
|---|---|
| `history.py` | replay through a worker's engine, scrape its collector every step: OpenMetrics per 2-hour window |
| `evaluation.py` | `run_backtest`: backfill the TSDB once, one Prometheus, one `query_range` per alert expression |
| `inline.py` | the recording rules inlined into the alert expressions |
| `scoring.py` | pure: the `for` state machine, breaches, alert episodes, true positives / late / false alarms |
| `progress.py` | the progress bars (stderr) |
| `cli.py` | `add_parsers` (the `backtest` subcommand), the tables |

The Prometheus process and promtool are `alerts.prometheus_process` (the tests use the same wrapper).
"""

from __future__ import annotations

from monitor.errors import SlamonError


class BacktestError(SlamonError):
    """The backtest's input cannot be used (no readable event times, bad settings, rules reading each other in
    a cycle). Prometheus and promtool failures are `alerts.processes.ServiceError` (exit code: unavailable)."""
