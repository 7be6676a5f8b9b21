"""Real local services for tests: a single-node Kafka broker, Prometheus and Alertmanager.

Standard library only. Every process is an `alerts.processes.ManagedProcess`: started in its own session /
process group, registered for cleanup at interpreter exit (and on SIGTERM), and stopped by signalling its whole
process group, so no broker or server is ever left behind by a test run.

    broker = KafkaBroker(tmpdir).start()          # .bootstrap == "127.0.0.1:PORT"
    broker.kill9(); broker.restart(); broker.stop()

    prom = Prometheus(tmpdir, config_text=..., rule_files={"r.yml": "..."}).start()
    prom.query("up")                              # -> list of result vectors (data.result)

    am = Alertmanager(tmpdir).start()
    am.post_alerts([{"labels": {"alertname": "X"}}]); am.alerts()

Prometheus is the product's own wrapper (`alerts.prometheus_process`, which `slamon backtest` runs); `free_port`,
`ServiceError` and the process base come from `alerts.processes`. Binaries: Kafka via deploy/kafka/kafka.sh
(jars from Maven Central, JDK >= 17), Prometheus and Alertmanager from Debian (/usr/bin/prometheus,
/usr/bin/prometheus-alertmanager); .ci/install-services.sh installs all.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alerts.processes import (
    LocalHttpService,
    ManagedProcess,
    ServiceError,
    free_port,
    get_json,
    http,
    port_open,
    stop_all,
    stop_children_on_sigterm,
    which,
)
from alerts.prometheus_process import Prometheus

__all__ = ["REPO_ROOT", "Alertmanager", "KafkaBroker", "ManagedProcess", "Prometheus", "ServiceError", "free_port",
           "port_open", "stop_all"]

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"

ALERTMANAGER_BIN = os.environ.get("SLAMON_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")

stop_children_on_sigterm()


# ----------------------------------------------------------------------------------------------- Kafka


class KafkaBroker(ManagedProcess):
    """Single-node KRaft broker (broker+controller) from deploy/kafka/kafka.sh, state in `workdir`.

    The JVM is this process's direct child (`kafka.sh run` execs java). `restart()` keeps the port, the
    cluster id and the data; `kill9()` simulates a crash (restart afterwards recovers the logs).
    """

    name = "kafka"

    def __init__(self, workdir: str | os.PathLike | None = None, port: int | None = None,
                 start_timeout: float = 120.0, env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.workdir = Path(workdir) if workdir is not None else None
        self.port = port
        self.start_timeout = start_timeout
        self.env = dict(os.environ, **(env or {}))
        self.started_in: float | None = None  # seconds from spawn to ready, last start

    # -- availability
    @staticmethod
    def missing() -> str | None:
        """Why a broker cannot be run here, or None. (Needs a JDK; mvn only if the jars are not cached.)"""
        if not KAFKA_SH.exists():
            return f"{KAFKA_SH} not found"
        if not which("java"):
            return "java not found (JDK >= 17 needed for Kafka; see .ci/install-services.sh)"
        if not KafkaBroker.resolved() and not which("mvn"):
            return "Kafka jars not cached and mvn not found (run .ci/install-services.sh)"
        return None

    @staticmethod
    def version() -> str:
        return subprocess.run(["bash", str(KAFKA_SH), "version"], capture_output=True, text=True,
                              check=True).stdout.strip()

    @staticmethod
    def resolved() -> bool:
        try:
            return (KafkaBroker.lib_dir() / ".complete").exists()
        except Exception:
            return False

    @staticmethod
    def lib_dir() -> Path:
        cache = os.environ.get("SLAMON_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "slamon")
        return Path(cache) / f"kafka-{KafkaBroker.version()}" / "lib"

    @staticmethod
    def resolve(timeout: float = 900.0) -> Path:
        """Download the broker's jars into the cache if needed (idempotent). Returns the lib dir."""
        r = subprocess.run(["bash", str(KAFKA_SH), "resolve"], capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise ServiceError(f"kafka.sh resolve failed ({r.returncode}):\n{r.stderr[-3000:]}")
        return Path(r.stdout.strip().splitlines()[-1])

    # -- lifecycle
    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise ServiceError("broker not started")
        return f"127.0.0.1:{self.port}"

    def start(self, tmpdir: str | os.PathLike | None = None) -> KafkaBroker:
        """Start (or restart on the same state dir) and wait until the broker is ready."""
        if self.is_running():
            raise ServiceError(f"broker already running (pid {self.pid})")
        if tmpdir is not None:
            self.workdir = Path(tmpdir)
        if self.workdir is None:
            raise ServiceError("KafkaBroker needs a work directory")
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports_file = self.workdir / "ports"
        if ports_file.exists():  # existing state: same ports as before
            self.port = int(ports_file.read_text().split()[0])
        elif self.port is None:
            self.port = free_port()
        if not self.resolved():
            self.resolve()
        t0 = time.monotonic()
        # a port held by a broker that was just killed is released when it is reaped; wait briefly
        deadline = time.monotonic() + 10
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._spawn(["bash", str(KAFKA_SH), "run", str(self.workdir), str(self.port)],
                    self.workdir / "kafka.log", env=self.env)

        def ready() -> bool:
            return "Kafka Server started" in self._new_log_text() and port_open(self.port)

        self._wait(ready, self.start_timeout, f"Kafka broker on {self.bootstrap}")
        self.started_in = time.monotonic() - t0
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        """Controlled shutdown (SIGTERM); SIGKILL the process group after `timeout` seconds."""
        return self._terminate(timeout)

    def restart(self, timeout: float = 30.0) -> KafkaBroker:
        """Stop (if running) and start again on the same port and data."""
        if self.is_running():
            self.stop(timeout)
        return self.start()


# ---------------------------------------------------------------------------------------- Alertmanager

DEFAULT_ALERTMANAGER_CONFIG = """\
route:
  receiver: 'null'
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: 'null'
"""


class Alertmanager(LocalHttpService):
    """/usr/bin/prometheus-alertmanager on 127.0.0.1:<free port>, no clustering, state under `workdir`.

    config_text: alertmanager.yml (default: one 'null' receiver). For notifications to a test, route to
    tests.support.e2e_stack.TimedWebhook's url.
    """

    name = "alertmanager"

    def __init__(self, workdir: str | os.PathLike, config_text: str | None = None, port: int | None = None,
                 extra_args: Iterable[str] = (), start_timeout: float = 30.0,
                 binary: str = ALERTMANAGER_BIN) -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.config_text = config_text if config_text is not None else DEFAULT_ALERTMANAGER_CONFIG
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.binary = binary
        self.config_path = self.workdir / "alertmanager.yml"

    @staticmethod
    def missing(binary: str = ALERTMANAGER_BIN) -> str | None:
        if not which(binary):
            return f"{binary} not found (apt-get install prometheus-alertmanager; see .ci/install-services.sh)"
        return None

    def start(self) -> Alertmanager:
        if self.is_running():
            raise ServiceError("alertmanager already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text)
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            "--log.level=info",
            *self.extra_args,
        ]
        self._spawn(argv, self.workdir / "alertmanager.log")

        def ready() -> bool:
            return http("GET", self.url + "/-/ready", timeout=2)[0] == 200

        self._wait(ready, self.start_timeout, f"Alertmanager on {self.address}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        return self._terminate(timeout)

    # -- v2 API
    def post_alerts(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts. Each alert: {"labels": {...}, "annotations": {...}, "startsAt": ...}."""
        status, raw = http("POST", self.url + "/api/v2/alerts", body=alerts)
        if status != 200:
            raise ServiceError(f"POST /api/v2/alerts -> HTTP {status}: {raw[:500]!r}")

    def alerts(self, filters: Iterable[str] = (), active: bool | None = None) -> list[dict]:
        """GET /api/v2/alerts; filters are matchers such as 'alertname="X"'."""
        params: list[tuple[str, str]] = [("filter", f) for f in filters]
        if active is not None:
            params.append(("active", str(active).lower()))
        url = self.url + "/api/v2/alerts" + ("?" + urllib.parse.urlencode(params) if params else "")
        return get_json(url)

    def status(self) -> dict:
        return get_json(self.url + "/api/v2/status")

    def wait_for_alerts(self, predicate=bool, filters: Iterable[str] = (), timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(ServiceError, OSError):
                last = self.alerts(filters)
                if predicate(last):
                    return last
            time.sleep(0.3)
        raise ServiceError(f"alerts did not satisfy the predicate in {timeout}s; last: {last}")
