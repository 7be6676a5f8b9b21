"""Pieces of the end-to-end alert test: a timed webhook receiver, a worker process, generated configs.

    hook = TimedWebhook().start()                      # records when each alert arrived (time.time())
    write_rules_and_routes(workdir, contracts_text, alerting_text)  -> (rule paths, alertmanager.yml text)
    worker = Worker(env, workdir / "worker.log").start(); worker.wait_owns(partitions=1)
    prometheus_config(worker.metrics_address)          # 1 s scrape + evaluation, job "slamon"

The rules and the Alertmanager routes come from the same code as `slamon rules` / `slamon alertmanager`
(alerts.rules.write_rules, alerts.alertmanager.alertmanager_config), so the test exercises what ships.
Processes use the managed-process base of alerts.processes: own process group, killed with the test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from alerts.alertmanager import HEADER as AM_HEADER
from alerts.alertmanager import alertmanager_config
from alerts.config import parse_alerting
from alerts.processes import ManagedProcess, ServiceError, free_port
from alerts.rules import dump_yaml, write_rules
from monitor.contracts import parse_contracts
from tests.support.procs import REPO_ROOT

# --- webhook receiver with arrival times ----------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One alert of one Alertmanager notification, stamped with the wall time it reached the receiver."""

    at: float  # time.time() on arrival
    status: str  # "firing" | "resolved" (the alert's own status, not the group's)
    labels: dict[str, str]
    starts_at: float | None
    ends_at: float | None

    def matches(self, alertname: str, status: str, labels: Mapping[str, str]) -> bool:
        return (self.labels.get("alertname") == alertname and self.status == status
                and all(self.labels.get(k) == v for k, v in labels.items()))


def _rfc3339(value: str | None) -> float | None:
    """Alertmanager's timestamps (nanosecond precision, 'Z'); the zero time means unset."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float("0." + frac.split("+")[0]) if frac else 0.0)


class TimedWebhook:
    """Alertmanager webhook receiver in the test process; every alert of every notification is an Arrival."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.raw: list[dict] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer._received(time.time(), body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="e2e-webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> TimedWebhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _received(self, at: float, body: bytes) -> None:
        with contextlib.suppress(ValueError), self._cond:
            doc = json.loads(body or b"{}")
            self.raw.append({"at": at, **doc})
            for alert in doc.get("alerts", []):
                self.arrivals.append(Arrival(at, alert.get("status", doc.get("status", "?")),
                                             dict(alert.get("labels", {})), _rfc3339(alert.get("startsAt")),
                                             _rfc3339(alert.get("endsAt"))))
            self._cond.notify_all()

    def first(self, alertname: str, status: str = "firing", after: float = 0.0, **labels: str) -> Arrival | None:
        """The first arrival of that alert in that status at or after `after`, or None."""
        with self._cond:
            return next((a for a in self.arrivals if a.at >= after and a.matches(alertname, status, labels)), None)

    def wait(self, alertname: str, status: str = "firing", *, until: float, after: float = 0.0,
             **labels: str) -> Arrival | None:
        """Block until `first(...)` finds one or the wall time `until` passes (then None)."""
        with self._cond:
            while True:
                found = next((a for a in self.arrivals if a.at >= after and a.matches(alertname, status, labels)),
                             None)
                left = until - time.time()
                if found is not None or left <= 0:
                    return found
                self._cond.wait(min(left, 1.0))

    def summary(self) -> str:
        with self._cond:
            return "\n".join(f"  {a.at:.1f} {a.status:<8} {a.labels.get('alertname')} "
                             f"{a.labels.get('client')}/{a.labels.get('sla')} severity={a.labels.get('severity')} "
                             f"priority={a.labels.get('priority', '-')}" for a in self.arrivals) or "  (none)"


# --- generated configuration ----------------------------------------------------------------------------


def write_rules_and_routes(workdir: Path, contracts_text: str, alerting_text: str,
                           env: Mapping[str, str]) -> tuple[list[Path], str]:
    """Contracts and alerting config files in `workdir` (`${NAME}` in the alerting config from `env`);
    returns the generated rule files and the alertmanager.yml text."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "contracts.yaml").write_text(contracts_text)
    (workdir / "alerting.yaml").write_text(alerting_text)
    contracts = parse_contracts(contracts_text, str(workdir / "contracts.yaml"))
    alerting = parse_alerting(alerting_text, str(workdir / "alerting.yaml"), env=env)
    rules = write_rules(workdir / "rules", contracts, alerting)
    warnings: list[str] = []
    routes = AM_HEADER + dump_yaml(alertmanager_config(alerting, env={}, warnings=warnings))
    if warnings:
        raise ServiceError(f"alertmanager config warnings: {warnings}")
    return rules, routes


def prometheus_config(worker_address: str, job: str = "slamon", interval: str = "1s") -> str:
    """Scrape the worker and evaluate the rules every `interval` (rule files and Alertmanager are added by
    alerts.prometheus_process.Prometheus)."""
    return (f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{worker_address}']\n")


# --- the worker -----------------------------------------------------------------------------------------


class Worker(ManagedProcess):
    """`python -m streams.app` (what `slamon worker` runs) configured by SLAMON_* variables."""

    name = "slamon-worker"

    def __init__(self, settings: Mapping[str, str], workdir: Path) -> None:
        super().__init__()
        self.port = free_port()
        self.workdir = workdir
        base = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
        self.env = {**base, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **settings,
                    "SLAMON_METRICS_BIND": self.address, "SLAMON_DATA_DIR": str(workdir / "data")}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Worker:
        self._spawn([sys.executable, "-m", "streams.app"], self.workdir / "worker.log", env=self.env)
        return self

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://{self.address}/healthz", timeout=5) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def wait_owns(self, partitions: int, timeout: float) -> None:
        """Until the worker holds an engine for every partition of the events topic."""
        self._wait(lambda: len((self.health() or {}).get("engines", [])) == partitions, timeout,
                   f"worker owning {partitions} partition(s)")
