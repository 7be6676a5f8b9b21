"""Real local services for tests: a single-node Kafka broker, Prometheus and Alertmanager.

Standard library only. Every process is started in its own session / process group, is registered for
cleanup at interpreter exit (and on SIGTERM), and is stopped by signalling its whole process group, so no
broker or server is ever left behind by a test run.

    broker = KafkaBroker(tmpdir).start()          # .bootstrap == "127.0.0.1:PORT"
    broker.kill9(); broker.restart(); broker.stop()

    prom = Prometheus(tmpdir, config_text=..., rule_files={"r.yml": "..."}).start()
    prom.query("up")                              # -> list of result vectors (data.result)

    am = Alertmanager(tmpdir).start()
    am.post_alerts([{"labels": {"alertname": "X"}}]); am.alerts()

Binaries: Kafka via deploy/kafka/kafka.sh (jars from Maven Central, JDK >= 17), Prometheus and Alertmanager
from Debian (/usr/bin/prometheus, /usr/bin/prometheus-alertmanager); .ci/install-services.sh installs all.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"

PROMETHEUS_BIN = os.environ.get("SLAMON_PROMETHEUS_BIN", "/usr/bin/prometheus")
ALERTMANAGER_BIN = os.environ.get("SLAMON_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")


class ServiceError(RuntimeError):
    """A service could not be started or answered badly."""


# --------------------------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on host (the OS picks it; small race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _which(path_or_name: str) -> str | None:
    if os.path.isabs(path_or_name):
        return path_or_name if os.access(path_or_name, os.X_OK) else None
    return shutil.which(path_or_name)


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def _http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _get_json(url: str, timeout: float = 10.0) -> Any:
    status, raw = _http("GET", url, timeout=timeout)
    if status != 200:
        raise ServiceError(f"GET {url} -> HTTP {status}: {raw[:500]!r}")
    return json.loads(raw)


# Children die with the test process even if it is SIGKILLed (Linux only; only for children started
# from the main thread, since the signal fires when the *thread* that forked them exits).
_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup_pdeathsig() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# ----------------------------------------------------------------------------------- process registry

# strong references: a test that drops its handle must not orphan the process
_LIVE: set[_ManagedProcess] = set()
_LIVE_LOCK = threading.Lock()


def stop_all(timeout: float = 10.0) -> None:
    """Stop every process started through this module that is still running."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        with contextlib.suppress(Exception):
            p._terminate(timeout)


atexit.register(stop_all)


def _install_sigterm_handler() -> None:
    # SIGTERM's default action skips atexit; turn it into SystemExit so cleanup runs.
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

            def _on_term(signum, frame):
                stop_all(5.0)
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, _on_term)


_install_sigterm_handler()


class _ManagedProcess:
    """A child process in its own process group, logged to a file, stopped group-wide."""

    name = "process"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log_offset = 0

    # -- lifecycle
    def _spawn(self, argv: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        preexec = _child_setup_pdeathsig if threading.current_thread() is threading.main_thread() else None
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
                env=dict(env) if env is not None else None,
                cwd=str(log_path.parent),
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def _terminate(self, timeout: float) -> int | None:
        """SIGTERM the group, wait, SIGKILL the group on timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=30)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL the whole process group and wait for it to be gone (crash simulation)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def log_tail(self, n: int = 40) -> str:
        return _tail(self.log_path, n) if self.log_path else "(no log)"

    def _new_log_text(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                code = self.proc.returncode if self.proc else None
                raise ServiceError(f"{what} exited during startup (code {code}); log tail:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self._terminate(5)
        raise ServiceError(f"{what} not ready after {timeout:.0f}s; log tail:\n{self.log_tail()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0) -> int | None:  # overridden where needed
        return self._terminate(timeout)


# ----------------------------------------------------------------------------------------------- Kafka


class KafkaBroker(_ManagedProcess):
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
        if not _which("java"):
            return "java not found (JDK >= 17 needed for Kafka; see .ci/install-services.sh)"
        if not KafkaBroker.resolved() and not _which("mvn"):
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


# ------------------------------------------------------------------------------------------ Prometheus

DEFAULT_PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['${PROMETHEUS_ADDRESS}']
"""


def _write_rule_files(rule_files, dest: Path) -> list[Path]:
    """rule_files: mapping name -> YAML text, or iterable of paths to copy. Returns written paths."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    if rule_files is None:
        return out
    if isinstance(rule_files, Mapping):
        for name, text in rule_files.items():
            p = dest / Path(name).name
            p.write_text(text)
            out.append(p)
    else:
        for src in rule_files:
            src = Path(src)
            p = dest / src.name
            shutil.copyfile(src, p)
            out.append(p)
    return out


class Prometheus(_ManagedProcess):
    """/usr/bin/prometheus on 127.0.0.1:<free port> with its TSDB under `workdir`.

    config_text: prometheus.yml content; `${PROMETHEUS_ADDRESS}` is replaced by "127.0.0.1:PORT". Default:
    scrape itself every 1 s. rule_files (mapping name -> text, or paths) are placed in workdir/rules/ and,
    if the config has no `rule_files:` key, referenced as `rules/*`. alertmanagers: list of Alertmanager
    URLs/addresses added as an `alerting:` section if the config has none. Started with
    --web.enable-lifecycle, so `reload()` works after editing `config_path` or the rule files.
    Prometheus 2.42 applies scrape targets every 5 s: the first sample of a target comes ~5-6 s after start
    (use `wait_for`).
    """

    name = "prometheus"

    def __init__(self, workdir: str | os.PathLike, config_text: str | None = None,
                 rule_files: Mapping[str, str] | Iterable[str | os.PathLike] | None = None,
                 alertmanagers: Iterable[str] | None = None, port: int | None = None,
                 extra_args: Iterable[str] = (), start_timeout: float = 30.0,
                 binary: str = PROMETHEUS_BIN) -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.config_text = config_text if config_text is not None else DEFAULT_PROMETHEUS_CONFIG
        self.rule_files = rule_files
        self.alertmanagers = list(alertmanagers or [])
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.binary = binary
        self.config_path = self.workdir / "prometheus.yml"
        self.rules_dir = self.workdir / "rules"

    @staticmethod
    def missing(binary: str = PROMETHEUS_BIN) -> str | None:
        if not _which(binary):
            return f"{binary} not found (apt-get install prometheus; see .ci/install-services.sh)"
        return None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _render_config(self) -> str:
        text = self.config_text.replace("${PROMETHEUS_ADDRESS}", self.address)
        if self.rule_files is not None and "rule_files:" not in text:
            text = text.rstrip("\n") + "\nrule_files:\n  - 'rules/*'\n"
        if self.alertmanagers and "alerting:" not in text:
            targets = ", ".join(
                "'" + a.removeprefix("http://").removeprefix("https://").rstrip("/") + "'"
                for a in self.alertmanagers
            )
            text = (text.rstrip("\n") + "\nalerting:\n  alertmanagers:\n    - static_configs:\n"
                    f"        - targets: [{targets}]\n")
        return text

    def start(self) -> Prometheus:
        if self.is_running():
            raise ServiceError("prometheus already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_rule_files(self.rule_files, self.rules_dir)
        self.config_path.write_text(self._render_config())
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            "--log.level=info",
            *self.extra_args,
        ]
        self._spawn(argv, self.workdir / "prometheus.log")

        def ready() -> bool:
            return _http("GET", self.url + "/-/ready", timeout=2)[0] == 200

        self._wait(ready, self.start_timeout, f"Prometheus on {self.address}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        return self._terminate(timeout)

    # -- HTTP API
    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; returns the `data` member, raises ServiceError on an API error."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        status, raw = _http("GET", url)
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise ServiceError(f"GET {url} -> HTTP {status}: {raw[:300]!r}") from e
        if status != 200 or doc.get("status") != "success":
            raise ServiceError(f"GET {url} -> HTTP {status}: {doc}")
        return doc["data"]

    def query_raw(self, expr: str, time: float | str | None = None) -> dict:
        """Instant query; the API's `data` object: {"resultType": ..., "result": [...]}."""
        return self.api("query", query=expr, time=time)

    def query(self, expr: str, time: float | str | None = None) -> list:
        """Instant query; the `result` list (for a vector: [{"metric": {...}, "value": [ts, "v"]}, ...])."""
        return self.query_raw(expr, time)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float | str) -> list:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def wait_for(self, expr: str, predicate=bool, timeout: float = 30.0, interval: float = 0.5) -> list:
        """Poll `query(expr)` until predicate(result) is true; returns that result."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(ServiceError):
                last = self.query(expr)
                if predicate(last):
                    return last
            time.sleep(interval)
        raise ServiceError(f"{expr!r} did not satisfy the predicate in {timeout}s; last result: {last}")

    def alerts(self) -> list:
        return self.api("alerts")["alerts"]

    def rules(self) -> list:
        return self.api("rules")["groups"]

    def targets(self) -> dict:
        return self.api("targets")

    def reload(self) -> None:
        """Re-read config and rule files (POST /-/reload)."""
        if self.rule_files is not None:
            _write_rule_files(self.rule_files, self.rules_dir)
        status, raw = _http("POST", self.url + "/-/reload")
        if status != 200:
            raise ServiceError(f"reload failed: HTTP {status} {raw[:300]!r}")


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


class Alertmanager(_ManagedProcess):
    """/usr/bin/prometheus-alertmanager on 127.0.0.1:<free port>, no clustering, state under `workdir`.

    config_text: alertmanager.yml (default: one 'null' receiver). For notifications to a test, use
    WebhookReceiver(...).config() as config_text.
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
        if not _which(binary):
            return f"{binary} not found (apt-get install prometheus-alertmanager; see .ci/install-services.sh)"
        return None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

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
            return _http("GET", self.url + "/-/ready", timeout=2)[0] == 200

        self._wait(ready, self.start_timeout, f"Alertmanager on {self.address}")
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        return self._terminate(timeout)

    # -- v2 API
    def post_alerts(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts. Each alert: {"labels": {...}, "annotations": {...}, "startsAt": ...}."""
        status, raw = _http("POST", self.url + "/api/v2/alerts", body=alerts)
        if status != 200:
            raise ServiceError(f"POST /api/v2/alerts -> HTTP {status}: {raw[:500]!r}")

    def alerts(self, filters: Iterable[str] = (), active: bool | None = None) -> list[dict]:
        """GET /api/v2/alerts; filters are matchers such as 'alertname="X"'."""
        params: list[tuple[str, str]] = [("filter", f) for f in filters]
        if active is not None:
            params.append(("active", str(active).lower()))
        url = self.url + "/api/v2/alerts" + ("?" + urllib.parse.urlencode(params) if params else "")
        return _get_json(url)

    def status(self) -> dict:
        return _get_json(self.url + "/api/v2/status")

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


class WebhookReceiver:
    """A tiny HTTP server collecting Alertmanager webhook notifications (JSON bodies) in `.received`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[dict] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with contextlib.suppress(ValueError), outer._cond:
                    outer.received.append(json.loads(body or b"{}"))
                    outer._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def config(self, group_wait: str = "0s", group_interval: str = "1s", repeat_interval: str = "1h") -> str:
        """An alertmanager.yml routing everything to this receiver."""
        return (
            f"route:\n  receiver: test\n  group_by: ['alertname']\n  group_wait: {group_wait}\n"
            f"  group_interval: {group_interval}\n  repeat_interval: {repeat_interval}\n"
            f"receivers:\n  - name: test\n    webhook_configs:\n      - url: '{self.url}'\n"
            f"        send_resolved: true\n"
        )

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, count: int = 1, timeout: float = 30.0) -> list[dict]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise ServiceError(f"{len(self.received)} webhook notification(s) after {timeout}s, "
                                   f"wanted {count}")
            return list(self.received)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
