"""The whole slamon pipeline on this machine, without Docker: `make demo` or `python -m deploy.local.demo`.

    python -m deploy.local.demo [--duration SECONDS] [--workdir DIR] [--keep] [--no-install]
                                [--feed generator|gateway|both] [--replay-speed 60]

Starts, on 127.0.0.1 and free ports:

  Kafka (deploy/kafka/kafka.sh run, KRaft, one node)
    <- feed: generated traffic for examples/contracts.yaml, paced in wall-clock time (deploy/local/feed.py),
             with scenarios that raise warnings and breaches within minutes (--feed generator, the default)
    <- and/or (--feed gateway | both) the ingest gateway: `slamon ingest` with examples/ingest/gateway.yaml
             (its secrets written to the work dir), fed by examples/ingest/post_fixtures.py, which posts the
             connector fixtures (Zendesk, ServiceNow, Jira, Amazon Connect, Twilio, Genesys, Alertmanager, a
             generic tool) signed as each vendor signs. Their six hours of event time are replayed live,
             compressed --replay-speed times (60: six minutes): each delivery's times are mapped onto the
             wall clock and it is posted when its time comes, so no event arrives later than the clients'
             allowed lateness (post_fixtures.py's docstring)
    -> worker-1, worker-2: `slamon worker` (SLAMON_* environment), /metrics on two ports
    -> Prometheus (/usr/bin/prometheus): scrapes both workers every 5 s, evaluates the rules of
       `slamon rules examples/contracts.yaml --alerting deploy/local/alerting.yaml` every 5 s
    -> Alertmanager (/usr/bin/prometheus-alertmanager, no clustering), config from `slamon alertmanager`
    -> a webhook receiver inside this process that prints every notification to the console.

Missing pieces are installed first: Python packages into the running virtualenv (pip), JDK/Maven/Prometheus/
Alertmanager via .ci/install-services.sh when running as root, the Kafka jars from Maven Central.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stop everything in order (feed, workers, Prometheus and Alertmanager, Kafka)
and leave no process behind: each child runs in its own process group, which is signalled as a whole and
SIGKILLed after a timeout; children die with the demo even if it is SIGKILLed (PR_SET_PDEATHSIG). A second
Ctrl-C kills at once. `--duration S` stops by itself S seconds after everything is up.

Only the standard library is imported before the dependency check.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from deploy.local.procman import Proc, ProcessManager
from deploy.local.webhook import ConsoleWebhook

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_EXAMPLE = ROOT / "examples" / "ingest" / "gateway.yaml"
POST_FIXTURES = ROOT / "examples" / "ingest" / "post_fixtures.py"
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
INSTALL_SERVICES = ROOT / ".ci" / "install-services.sh"
DEFAULT_CONTRACTS = ROOT / "examples" / "contracts.yaml"
DEFAULT_ALERTING = ROOT / "deploy" / "local" / "alerting.yaml"
PROMETHEUS_BIN = os.environ.get("SLAMON_PROMETHEUS_BIN", "/usr/bin/prometheus")
ALERTMANAGER_BIN = os.environ.get("SLAMON_ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")

# import name -> distribution (pip) name; everything the workers, the feed and the rule generator import
PY_MODULES = {
    "faust": "faust-streaming", "aiokafka": "aiokafka", "kafka": "kafka-python",
    "prometheus_client": "prometheus-client", "pydantic": "pydantic", "pydantic_settings": "pydantic-settings",
    "yaml": "pyyaml", "orjson": "orjson", "holidays": "holidays", "tqdm": "tqdm", "aiohttp": "aiohttp",
    "uvloop": "uvloop",
}

# The demo's story: the phone team of acme-retail is short-staffed (service level and waits degrade), the
# globex-bank IVR goes down for four minutes, the fraud queue surges, and waves of P1 tickets approach
# their first-response deadline (feed.py --incidents): warnings at once, breaches after 90 s and 5 min.
DEFAULT_SCENARIOS = (
    "staffing_drop:acme-retail:-10m:40m:0.25",
    "outage:globex-bank:2m:4m::ivr",
    "backlog_surge:globex-bank:-15m:45m:3:fraud",
)


MARKER = ".slamon-demo"


class Stop(Exception):
    """Ctrl-C / SIGTERM / --duration: stop everything."""


class StartupError(Exception):
    pass


# ------------------------------------------------------------------------------------------------ console

T0 = time.monotonic()
_print_lock = threading.Lock()


def say(message: str = "", *, stamp: bool = True) -> None:
    with _print_lock:
        if stamp:
            print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)
        else:
            print(message, flush=True)


# -------------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def human(seconds: float) -> str:
    return f"{seconds:.1f}s"


def write_gateway_config(directory: Path, contracts: Path, bootstrap: str, port: int) -> Path:
    """examples/ingest/gateway.yaml for this machine: listening on 127.0.0.1:`port`, Kafka at `bootstrap`, the
    demo's topics, a random secret per endpoint in `directory`/secrets/ (post_fixtures.py signs with the same
    files), no file tails (there is no Asterisk here). Returns the config's path."""
    import secrets

    import yaml

    config = yaml.safe_load(GATEWAY_EXAMPLE.read_text())
    config.update(contracts=str(contracts), listen=f"127.0.0.1:{port}", kafka={"bootstrap_servers": bootstrap},
                  topics={"events": "slamon.events", "deadletter": "slamon.deadletter"})
    config.pop("tails", None)
    # the generic connector's fixtures are a helpdesk's batches, not the example's claims tool: an endpoint for
    # them, first, so that post_fixtures.py (the first endpoint of each connector) posts them there
    helpdesk = yaml.safe_load((ROOT / "tests" / "fixtures" / "ingest" / "generic" / "endpoint.yaml").read_text())
    helpdesk.update(client="acme-retail", auth={})
    config["endpoints"] = {"helpdesk": helpdesk, **config["endpoints"]}
    (directory / "secrets").mkdir(parents=True, exist_ok=True)
    for name, endpoint in config["endpoints"].items():
        secret = f"{name}:{secrets.token_hex(16)}" if name == "servicenow" else secrets.token_hex(24)
        (directory / "secrets" / name).write_text(secret + "\n")
        endpoint["auth"]["secret_file"] = f"secrets/{name}"
    path = directory / "gateway.yaml"
    path.write_text("# generated by deploy/local/demo.py from examples/ingest/gateway.yaml\n"
                    + yaml.safe_dump(config, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------------- the demo


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop_requested: str | None = None
        self.stopping = False
        self.keep = args.keep
        if args.workdir:
            self.work = Path(args.workdir).resolve()
            if self.work.exists() and any(self.work.iterdir()):
                # a previous run's broker, state and logs: every run starts fresh -- but only ever empty a
                # directory this demo created (marker file), never an arbitrary one
                if not (self.work / MARKER).exists():
                    raise SystemExit(f"error: --workdir {self.work} is not empty and not a demo work dir "
                                     f"(no {MARKER} in it); give a new or empty directory")
                for old in self.work.iterdir():
                    if old.is_dir() and not old.is_symlink():
                        shutil.rmtree(old)
                    else:
                        old.unlink()
            self.work.mkdir(parents=True, exist_ok=True)
            self.keep = True
        else:
            self.work = Path(tempfile.mkdtemp(prefix="slamon-demo-"))
        (self.work / MARKER).write_text("work dir of deploy/local/demo.py; emptied by the next run using it\n")
        self.logs = self.work / "logs"
        self.pm = ProcessManager(self.logs)
        self.webhook: ConsoleWebhook | None = None
        self.kafka_port = 0
        self.prom_port = args.prometheus_port or free_port()
        self.am_port = args.alertmanager_port or free_port()
        self.worker_ports: list[int] = []
        self.gateway_port = 0
        self.ready_at: float | None = None
        self.failed = False

    # --- signals and waiting -------------------------------------------------------------------------

    def install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stopping or self.stop_requested:
            if not getattr(self, "_forced", False):
                self._forced = True
                say(f"{name} again: killing everything now")
                self.pm.kill_all()
            return
        self.stop_requested = name

    def check(self) -> None:
        """Raise Stop when a stop was requested; StartupError/warning when a child died."""
        if self.stop_requested:
            raise Stop(self.stop_requested)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            self.check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))

    def wait_until(self, what: str, ready, timeout: float, proc: Proc | None = None, interval: float = 0.3):
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            if proc is not None and not proc.alive():
                raise StartupError(f"{what}: {proc.name} exited with code {proc.popen.returncode}; last lines of "
                                   f"{proc.log_path}:\n{proc.tail()}")
            result = ready()
            if result:
                return result
            if time.monotonic() > deadline:
                tail = f"; last lines of {proc.log_path}:\n{proc.tail()}" if proc is not None else ""
                raise StartupError(f"{what}: not ready after {timeout:.0f}s{tail}")
            time.sleep(interval)

    def run_cmd(self, what: str, argv: list[str], env: dict | None = None, timeout: float = 600) -> str:
        """Run a short command (interruptible by Ctrl-C); return its stdout; raise with its output on failure."""
        log = self.logs / f"{what}.log"
        out_path = self.logs / f"{what}.out"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as err, open(out_path, "wb") as out:
            proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, cwd=ROOT,
                                    env=env or self.env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if self.stop_requested or time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    self.check()
                    raise StartupError(f"{what}: timed out after {timeout:.0f}s")
                time.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):  # whatever it left in its group
                os.killpg(proc.pid, signal.SIGKILL)
        out = out_path.read_text(errors="replace")
        if proc.returncode != 0:
            raise StartupError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
                               f"{log.read_text(errors='replace')[-3000:]}{out[-2000:]}")
        return out

    # --- environment ---------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}
        for k in ("SLAMON_CACHE", "SLAMON_KAFKA_VERSION", "SLAMON_KAFKA_HEAP", "SLAMON_RUNBOOK_URL"):
            if k in os.environ:
                base[k] = os.environ[k]
        base["PYTHONPATH"] = str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH")
                                          else "")
        base["PYTHONUNBUFFERED"] = "1"
        base.update(extra)
        return base

    def slamon_env(self, **extra: str) -> dict[str, str]:
        return self.env(
            SLAMON_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{self.kafka_port}",
            SLAMON_APP_ID="slamon-demo",
            SLAMON_TOPICS__PARTITIONS=str(self.args.partitions),
            SLAMON_CONTRACTS=str(Path(self.args.contracts).resolve()),
            SLAMON_CLOCK="wall",
            SLAMON_CHECKPOINT_INTERVAL="5",
            SLAMON_SESSION_TIMEOUT="10",
            SLAMON_LOG_LEVEL="info",
            **extra,
        )

    @staticmethod
    def slamon(*args: str) -> list[str]:
        """argv of `slamon ARGS` with the running interpreter (the venv's, whatever PATH says)."""
        return [sys.executable, "-m", "slamon.cli", *args]

    # --- steps ---------------------------------------------------------------------------------------

    def ensure_python(self) -> None:
        missing = [m for m in PY_MODULES if importlib.util.find_spec(m) is None]
        if not missing:
            return
        if self.args.no_install:
            raise StartupError(f"Python packages missing: {', '.join(PY_MODULES[m] for m in missing)} "
                               f"(pip install -e . ; or drop --no-install)")
        if sys.prefix == sys.base_prefix:
            raise StartupError("Python packages are missing and this is not a virtualenv: run `make demo` "
                               "(creates .venv) or `python3 -m venv .venv && .venv/bin/pip install -e .`")
        say(f"installing Python packages into {sys.prefix} (missing: {', '.join(missing)}) ...")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        self.run_cmd("pip-install", [*pip, "-e", str(ROOT)], env=dict(os.environ))
        importlib.invalidate_caches()
        still = [m for m in PY_MODULES if importlib.util.find_spec(m) is None]
        if still:  # a dependency the project metadata does not declare
            self.run_cmd("pip-install-extra", [*pip, *(PY_MODULES[m] for m in still)], env=dict(os.environ))
            importlib.invalidate_caches()
            still = [m for m in PY_MODULES if importlib.util.find_spec(m) is None]
            if still:
                raise StartupError(f"could not install {', '.join(still)}")
        say("Python packages installed")

    def ensure_services(self) -> None:
        def missing() -> list[str]:
            out = []
            if shutil.which("java") is None:
                out.append("java (JDK >= 17)")
            if not os.access(PROMETHEUS_BIN, os.X_OK):
                out.append(PROMETHEUS_BIN)
            if not os.access(ALERTMANAGER_BIN, os.X_OK):
                out.append(ALERTMANAGER_BIN)
            if shutil.which("mvn") is None and not self.kafka_resolved():
                out.append("mvn (to fetch the Kafka jars)")
            return out

        need = missing()
        if need:
            if self.args.no_install:
                raise StartupError(f"missing: {', '.join(need)} (bash .ci/install-services.sh installs them)")
            if os.geteuid() != 0 and shutil.which("sudo") is None:
                raise StartupError(f"missing: {', '.join(need)}; run `sudo bash .ci/install-services.sh` first")
            say(f"installing {', '.join(need)} with .ci/install-services.sh (apt; a few minutes) ...")
            self.run_cmd("install-services", ["bash", INSTALL_SERVICES], env=dict(os.environ), timeout=1800)
            need = missing()
            if need:
                raise StartupError(f"still missing after install-services: {', '.join(need)}")
        if not self.kafka_resolved():
            say("fetching the Kafka broker's jars from Maven Central (first run only, ~30 s) ...")
        lib = self.run_cmd("kafka-resolve", ["bash", KAFKA_SH, "resolve"], timeout=900).strip()
        self.kafka_lib = lib

    def kafka_resolved(self) -> bool:
        version = subprocess.run(["bash", str(KAFKA_SH), "version"], capture_output=True, text=True).stdout.strip()
        cache = Path(os.environ.get("SLAMON_CACHE") or Path.home() / ".cache" / "slamon")
        return (cache / f"kafka-{version}" / "lib" / ".complete").exists()

    def _alert_line(self, line: str) -> None:
        say(line)
        if line.startswith("ALERT FIRING") and not self._first_alert_said:
            self._first_alert_said = True
            say(f"first alert notification {human(time.monotonic() - T0)} after launch")

    _first_alert_said = False

    def generate_configs(self) -> None:
        rules = self.work / "prometheus" / "rules"
        self.run_cmd("slamon-rules", self.slamon("rules", str(Path(self.args.contracts).resolve()), "-o", str(rules),
                                                 "--alerting", str(Path(self.args.alerting).resolve())))
        n = len(list(rules.glob("*.yml")))
        self.webhook = ConsoleWebhook(record=self.work / "notifications.jsonl", say=self._alert_line).start()
        am_yml = self.work / "alertmanager" / "alertmanager.yml"
        am_yml.parent.mkdir(parents=True, exist_ok=True)
        alerting = str(Path(self.args.alerting).resolve())
        self.run_cmd("slamon-alertmanager", self.slamon("alertmanager", "-o", str(am_yml), "--alerting", alerting),
                     env=self.env(SLAMON_DEMO_WEBHOOK_URL=self.webhook.url))
        say(f"generated {n} rule files (slamon rules) and alertmanager.yml (slamon alertmanager) "
            f"-> webhook {self.webhook.url}")

    def start_kafka(self) -> None:
        self.kafka_port = free_port()
        version = subprocess.run(["bash", str(KAFKA_SH), "version"], capture_output=True, text=True).stdout.strip()
        say(f"starting Kafka {version} (KRaft, one node) on 127.0.0.1:{self.kafka_port} ...")
        started = time.monotonic()
        proc = self.pm.spawn("kafka", ["bash", KAFKA_SH, "run", self.work / "kafka", self.kafka_port],
                             env=self.env(), cwd=ROOT, stop_timeout=30)

        def ready() -> bool:
            try:
                text = proc.log_path.read_text(errors="replace")
            except OSError:
                return False
            return "Kafka Server started" in text and port_open(self.kafka_port)

        self.wait_until("Kafka", ready, 120, proc)
        say(f"Kafka ready ({human(time.monotonic() - started)})")

    def start_prometheus(self) -> None:
        d = self.work / "prometheus"
        d.mkdir(parents=True, exist_ok=True)
        targets = ", ".join(f"'127.0.0.1:{p}'" for p in self.worker_ports)
        (d / "prometheus.yml").write_text(
            "# generated by deploy/local/demo.py\n"
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n  evaluation_interval: 5s\n"
            "  external_labels:\n    environment: local-demo\n"
            "rule_files:\n  - 'rules/*.yml'\n"
            "alerting:\n  alertmanagers:\n    - static_configs:\n"
            f"        - targets: ['127.0.0.1:{self.am_port}']\n"
            "scrape_configs:\n"
            "  - job_name: slamon\n    static_configs:\n"
            f"      - targets: [{targets}]\n"
            + (f"  - job_name: slamon-ingest\n    static_configs:\n"
               f"      - targets: ['127.0.0.1:{self.gateway_port}']\n" if self.gateway_port else "")
            + "  - job_name: prometheus\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.prom_port}']\n"
        )
        say(f"starting Prometheus on 127.0.0.1:{self.prom_port} (scrape + rule evaluation every 5 s) ...")
        started = time.monotonic()
        proc = self.pm.spawn("prometheus", [
            PROMETHEUS_BIN, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.prom_port}", "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle", "--log.level=warn",
        ], cwd=d, stop_timeout=15)
        self.wait_until("Prometheus", lambda: http_get(f"http://127.0.0.1:{self.prom_port}/-/ready")[0] == 200,
                        60, proc)
        say(f"Prometheus ready ({human(time.monotonic() - started)})")

    def start_alertmanager(self) -> None:
        d = self.work / "alertmanager"
        say(f"starting Alertmanager on 127.0.0.1:{self.am_port} (no clustering) ...")
        started = time.monotonic()
        proc = self.pm.spawn("alertmanager", [
            ALERTMANAGER_BIN, f"--config.file={d / 'alertmanager.yml'}", f"--storage.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address=", "--log.level=warn",
        ], cwd=d, stop_timeout=15)
        self.wait_until("Alertmanager", lambda: http_get(f"http://127.0.0.1:{self.am_port}/-/ready")[0] == 200,
                        60, proc)
        say(f"Alertmanager ready ({human(time.monotonic() - started)})")

    def start_workers(self) -> None:
        n = self.args.workers
        say(f"starting {n} workers (`slamon worker`, {self.args.partitions} partitions, "
            f"wall clock) ...")
        started = time.monotonic()
        procs = []
        for i, port in enumerate(self.worker_ports, 1):
            env = self.slamon_env(SLAMON_METRICS_BIND=f"127.0.0.1:{port}",
                                  SLAMON_DATA_DIR=str(self.work / f"worker-{i}"))
            procs.append(self.pm.spawn(f"worker-{i}", self.slamon("worker"), env=env, cwd=ROOT, stop_timeout=30))

        def health(port: int) -> dict | None:
            status, body = http_get(f"http://127.0.0.1:{port}/healthz")
            if status != 200:
                return None
            with contextlib.suppress(ValueError):
                return json.loads(body)
            return None

        want = set(range(self.args.partitions))

        def assigned() -> bool:
            owned = []
            for proc, port in zip(procs, self.worker_ports, strict=True):
                if not proc.alive():
                    raise StartupError(f"{proc.name} exited with code {proc.popen.returncode}; last lines of "
                                       f"{proc.log_path}:\n{proc.tail()}")
                h = health(port)
                if h is None:
                    return False
                owned.append(set(h.get("engines", [])))
            union = set().union(*owned)
            each = all(owned) if n <= self.args.partitions else True
            return union == want and each and sum(map(len, owned)) == len(want)

        self.wait_until("workers", assigned, 180, None, interval=0.5)
        owners = []
        for i, port in enumerate(self.worker_ports, 1):
            h = health(port) or {}
            owners.append(f"worker-{i}: partitions {h.get('engines')}")
        say(f"workers ready ({human(time.monotonic() - started)}): {'; '.join(owners)}")

    def start_feed(self) -> None:
        scenarios = self.args.scenario or list(DEFAULT_SCENARIOS)
        argv = [sys.executable, "-m", "deploy.local.feed", "--backfill", self.args.backfill, "--hours", "12",
                "--seed", str(self.args.seed), "--tickets-per-hour", "30", "--calls-per-hour", "90",
                "--incidents", self.args.incidents, "--report", "60"]
        for s in scenarios:
            argv += ["--scenario", s]
        say(f"starting the generator (backfill {self.args.backfill}, then live; scenarios: {'; '.join(scenarios)}; "
            f"P1 incident waves every {self.args.incidents}) ...")
        proc = self.pm.spawn("feed", argv, env=self.slamon_env(), cwd=ROOT, stop_timeout=10)

        def live() -> bool:
            try:
                return "now live" in proc.log_path.read_text(errors="replace")
            except OSError:
                return False

        self.wait_until("generator", live, 120, proc)
        say("generator live (backfill sent, events now follow the wall clock)")

    def start_gateway(self) -> None:
        d = self.work / "ingest"
        config = write_gateway_config(d, Path(self.args.contracts).resolve(), f"127.0.0.1:{self.kafka_port}",
                                      self.gateway_port)
        say(f"starting the ingest gateway (`slamon ingest`, {config}) on 127.0.0.1:{self.gateway_port} ...")
        started = time.monotonic()
        proc = self.pm.spawn("gateway", self.slamon("ingest", "--config", str(config)), env=self.env(), cwd=ROOT,
                             stop_timeout=15)
        self.wait_until("gateway", lambda: http_get(f"http://127.0.0.1:{self.gateway_port}/healthz")[0] == 200,
                        60, proc)
        say(f"gateway ready ({human(time.monotonic() - started)}); replaying the vendors' fixtures through it, "
            f"event time {self.args.replay_speed:g}x the wall clock")
        self.pm.spawn("vendors", [sys.executable, str(POST_FIXTURES), "--config", str(config), "--speed",
                                  str(self.args.replay_speed)], env=self.env(), cwd=ROOT, stop_timeout=10)

    # --- running -------------------------------------------------------------------------------------

    def banner(self) -> None:
        say(f"slamon demo running (started in {human(self.ready_at)}). Alerts arrive below as ALERT lines.",
            stamp=True)
        rows = [
            ("Prometheus", f"http://127.0.0.1:{self.prom_port}", "/alerts, /rules, /targets, /graph"),
            ("Alertmanager", f"http://127.0.0.1:{self.am_port}", "/#/alerts"),
        ]
        for i, port in enumerate(self.worker_ports, 1):
            rows.append((f"worker-{i} metrics", f"http://127.0.0.1:{port}/metrics", "/healthz"))
        if self.gateway_port:
            rows.append(("ingest gateway", f"http://127.0.0.1:{self.gateway_port}/hooks/<endpoint>",
                         "/healthz, /metrics; logs/vendors.log: each delivery's answer"))
        rows += [
            ("Kafka", f"127.0.0.1:{self.kafka_port}", "topics slamon.events, slamon.deadletter, slamon.sla-events"),
            ("Kafka's tools", "deploy/kafka/kafka.sh tool kafka-consumer-groups.sh", f"--bootstrap-server "
             f"127.0.0.1:{self.kafka_port} --describe --group slamon-demo (docs/operations.md)"),
            ("webhook (console)", self.webhook.url if self.webhook else "-", "notifications.jsonl"),
            ("work dir", str(self.work), "logs/ " + ("(kept)" if self.keep else "(removed at exit; --keep keeps it)")),
        ]
        for name, url, note in rows:
            say(f"  {name:<18} {url:<40} {note}", stamp=False)
        until = f"for {self.args.duration:g}s" if self.args.duration else "until Ctrl-C"
        say(f"running {until}", stamp=True)

    def status(self) -> str:
        def query(expr: str) -> float | None:
            status, body = http_get(f"http://127.0.0.1:{self.prom_port}/api/v1/query?"
                                    + urllib.parse.urlencode({"query": expr}))
            with contextlib.suppress(ValueError, KeyError, IndexError):
                if status == 200:
                    result = json.loads(body)["data"]["result"]
                    return float(result[0]["value"][1]) if result else 0.0
            return None

        events = query("sum(slamon_events_received_total)")
        up = query('sum(up{job="slamon"})')
        _, body = http_get(f"http://127.0.0.1:{self.prom_port}/api/v1/alerts")
        firing = pending = 0
        with contextlib.suppress(ValueError, KeyError):
            for a in json.loads(body)["data"]["alerts"]:
                firing += a.get("state") == "firing"
                pending += a.get("state") == "pending"
        notes = self.webhook.notifications if self.webhook else 0
        return (f"status: workers up {int(up or 0)}/{len(self.worker_ports)}, events applied "
                f"{int(events or 0)}, alerts firing {firing} / pending {pending}, notifications {notes}")

    def run(self) -> int:
        self.install_signals()
        try:
            say(f"slamon demo: work dir {self.work}")
            self.ensure_python()
            self.ensure_services()
            self.check()
            self.worker_ports = [free_port() for _ in range(self.args.workers)]
            if self.args.feed in ("gateway", "both"):
                self.gateway_port = free_port()
            self.generate_configs()
            self.start_alertmanager()
            self.start_prometheus()
            self.start_kafka()
            self.start_workers()
            if self.args.feed in ("generator", "both"):
                self.start_feed()
            if self.args.feed in ("gateway", "both"):
                self.start_gateway()
            self.ready_at = time.monotonic() - T0
            self.banner()
            end = time.monotonic() + self.args.duration if self.args.duration else None
            next_status = time.monotonic() + self.args.status_every
            while True:
                self.sleep(0.5)
                for proc in self.pm.dead():
                    proc.returncode = proc.popen.returncode
                    if proc.name == "vendors" and proc.returncode == 0:
                        say(f"vendor replay finished: every fixture posted ({proc.log_path})")
                        continue
                    say(f"WARNING: {proc.name} exited with code {proc.returncode}; last lines of {proc.log_path}:")
                    say(proc.tail(15), stamp=False)
                    if proc.name.startswith("worker") or proc.name in ("kafka", "prometheus", "alertmanager",
                                                                       "gateway"):
                        self.failed = True
                        raise Stop(f"{proc.name} died")
                if self.args.status_every and time.monotonic() >= next_status:
                    next_status = time.monotonic() + self.args.status_every
                    say(self.status())
                if end is not None and time.monotonic() >= end:
                    raise Stop(f"--duration {self.args.duration:g}s reached")
        except Stop as why:
            say(f"stopping ({why}) ...")
        except StartupError as err:
            self.failed = True
            self.keep = True
            say(f"ERROR: {err}")
            say("stopping ...")
        except BaseException as err:  # a bug: still stop everything
            self.failed = True
            self.keep = True
            say(f"ERROR: {err!r}")
            raise
        finally:
            self.shutdown()
        return 1 if self.failed else 0

    def shutdown(self) -> None:
        self.stopping = True
        started = time.monotonic()
        # Ctrl-C from here on would only interrupt the orderly stop: a second one kills (see _on_signal)

        def stopped(proc: Proc, rc, seconds: float) -> None:
            how = "SIGTERM" if rc in (143, -signal.SIGTERM) else "SIGKILL" if rc in (137, -signal.SIGKILL) else ""
            say(f"stopped {proc.name} (exit {rc}{' = ' + how if how else ''}, {human(seconds)})")

        try:
            workers = [p.name for p in self.pm.procs if p.name.startswith("worker")]
            self.pm.stop_all(order=(["feed", "vendors"], ["gateway"], workers, ["prometheus", "alertmanager"],
                                    ["kafka"]), on_stop=stopped)
        finally:
            self.pm.kill_all()
            if self.webhook is not None:
                self.webhook.stop()
        say(f"everything stopped ({human(time.monotonic() - started)})")
        if self.webhook is not None and self.webhook.first_alert_at is not None:
            say(f"first alert notification came {human(self.webhook.first_alert_at - T0)} after launch; "
                f"{self.webhook.notifications} notifications in all")
        if self.keep:
            say(f"work dir kept: {self.work} (logs in {self.logs})")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.local.demo",
                                description="Run Kafka, two slamon workers, Prometheus, Alertmanager and a traffic "
                                            "generator on this machine (no Docker). Ctrl-C stops everything.")
    p.add_argument("--duration", type=float, default=0,
                   help="stop by itself this many seconds after everything is up (default: run until Ctrl-C)")
    p.add_argument("--workdir", help="state and logs here, emptied at start and kept at exit "
                                     "(default: a temporary dir, removed at exit)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work dir (logs) at exit")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing what is missing")
    p.add_argument("--contracts", default=str(DEFAULT_CONTRACTS))
    p.add_argument("--alerting", default=str(DEFAULT_ALERTING), help="alerting config for rules + Alertmanager")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--partitions", type=int, default=4, help="partitions of the events topic")
    p.add_argument("--backfill", default="45m", help="traffic before now sent at start (default 45m)")
    p.add_argument("--incidents", default="20m", help="P1 incident waves every ... (0: only one)")
    p.add_argument("--scenario", action="append", default=[],
                   help=f"generator scenario, START relative to now (default: {'; '.join(DEFAULT_SCENARIOS)})")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--feed", choices=("generator", "gateway", "both"), default="generator",
                   help="generator: deploy/local/feed.py straight into Kafka; gateway: vendor webhooks (the "
                        "connector fixtures) through `slamon ingest`; both")
    p.add_argument("--replay-speed", type=float, default=60.0,
                   help="--feed gateway: the fixtures' event time runs this many times faster than the wall clock")
    p.add_argument("--prometheus-port", type=int, default=0, help="default: a free port")
    p.add_argument("--alertmanager-port", type=int, default=0, help="default: a free port")
    p.add_argument("--status-every", type=float, default=30.0, help="seconds between status lines (0: none)")
    args = p.parse_args(argv)
    if args.workers < 1 or args.partitions < 1:
        p.error("--workers and --partitions must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    os.chdir(ROOT)
    return Demo(parse_args(argv)).run()


if __name__ == "__main__":
    raise SystemExit(main())
