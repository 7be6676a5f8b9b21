"""A real Prometheus as a child process, and promtool's TSDB backfill: used by `slamon backtest` and the tests.

    prom = Prometheus(workdir, config_text=..., rule_files={"r.yml": "..."}).start()
    prom.query("up")                              # -> list of result vectors (data.result)
    prom.query_range(expr, start, end, step)      # any length: split into chunks Prometheus accepts
    prom.stop()

    create_blocks_from_openmetrics(history.om.txt, data_dir)     # promtool tsdb create-blocks-from openmetrics
    create_blocks_from_rules(prom.url, rule_paths, start, end, step, out_dir)

Binaries: Debian's /usr/bin/prometheus and /usr/bin/promtool (`apt-get install prometheus`), or the paths in
SLAMON_PROMETHEUS_BIN / SLAMON_PROMTOOL_BIN. Errors are `ServiceError` (exit code: unavailable).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alerts.processes import LocalHttpService, ServiceError, free_port, http, which

PROMETHEUS_BIN = os.environ.get("SLAMON_PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL_BIN = os.environ.get("SLAMON_PROMTOOL_BIN", "/usr/bin/promtool")
MAX_POINTS = 10_000  # per query_range call (Prometheus refuses more than 11,000 points per series)
INSTALL_HINT = "Debian: apt-get install prometheus; or set SLAMON_PROMETHEUS_BIN / SLAMON_PROMTOOL_BIN"

DEFAULT_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['${PROMETHEUS_ADDRESS}']
"""


def require(binary: str) -> str:
    """The binary's path, or a ServiceError saying how to install it."""
    found = which(binary)
    if not found:
        raise ServiceError(f"{binary} not found (Prometheus and promtool are needed)", hint=INSTALL_HINT)
    return found


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


class Prometheus(LocalHttpService):
    """Prometheus on 127.0.0.1:<free port> with its TSDB in `data_dir` (default `workdir`/data).

    config_text: prometheus.yml content; `${PROMETHEUS_ADDRESS}` is replaced by "127.0.0.1:PORT". Default:
    scrape itself every 1 s. rule_files (mapping name -> text, or paths) are placed in workdir/rules/ and,
    if the config has no `rule_files:` key, referenced as `rules/*`. alertmanagers: list of Alertmanager
    URLs/addresses added as an `alerting:` section if the config has none. Started with
    --web.enable-lifecycle, so `reload()` works after editing `config_path` or the rule files.
    Prometheus 2.42 applies scrape targets every 5 s: the first sample of a target comes ~5-6 s after start
    (use `wait_for`). `restart()` keeps the port and the data (and loads TSDB blocks added meanwhile).
    """

    name = "prometheus"

    def __init__(self, workdir: str | os.PathLike, config_text: str | None = None,
                 rule_files: Mapping[str, str] | Iterable[str | os.PathLike] | None = None,
                 alertmanagers: Iterable[str] | None = None, port: int | None = None,
                 extra_args: Iterable[str] = (), start_timeout: float = 30.0,
                 binary: str = PROMETHEUS_BIN, data_dir: str | os.PathLike | None = None,
                 log_level: str = "info") -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.config_text = config_text if config_text is not None else DEFAULT_CONFIG
        self.rule_files = rule_files
        self.alertmanagers = list(alertmanagers or [])
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.binary = binary
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"
        self.log_level = log_level
        self.config_path = self.workdir / "prometheus.yml"
        self.rules_dir = self.workdir / "rules"

    @staticmethod
    def missing(binary: str = PROMETHEUS_BIN) -> str | None:
        if not which(binary):
            return f"{binary} not found (apt-get install prometheus; see .ci/install-services.sh)"
        return None

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
        binary = require(self.binary)
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_rule_files(self.rule_files, self.rules_dir)
        self.config_path.write_text(self._render_config())
        argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            f"--log.level={self.log_level}",
            *self.extra_args,
        ]
        self._spawn(argv, self.workdir / "prometheus.log")

        def ready() -> bool:
            return http("GET", self.url + "/-/ready", timeout=2)[0] == 200

        self._wait(ready, self.start_timeout, f"Prometheus on {self.address}")
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        return self._terminate(timeout)

    def restart(self) -> Prometheus:
        self.stop()
        return self.start()

    # -- HTTP API
    def api(self, path: str, timeout: float = 10.0, **params: Any) -> Any:
        """GET /api/v1/<path>; returns the `data` member, raises ServiceError on an API error."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        status, raw = http("GET", url, timeout=timeout)
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise ServiceError(f"Prometheus query failed: GET {url} -> HTTP {status}: {raw[:300]!r}") from e
        if status != 200 or doc.get("status") != "success":
            raise ServiceError(f"Prometheus query failed: {doc.get('error') or doc} (HTTP {status})")
        return doc["data"]

    def query_raw(self, expr: str, time: float | str | None = None) -> dict:
        """Instant query; the API's `data` object: {"resultType": ..., "result": [...]}."""
        return self.api("query", query=expr, time=time)

    def query(self, expr: str, time: float | str | None = None) -> list:
        """Instant query; the `result` list (for a vector: [{"metric": {...}, "value": [ts, "v"]}, ...])."""
        return self.query_raw(expr, time)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float, timeout: float = 300.0) -> list:
        """Every series of `expr` over [start, end] (seconds), in chunks Prometheus accepts; values
        concatenated: [{"metric": {...}, "values": [[ts, "v"], ...]}, ...]."""
        out: dict[tuple, dict] = {}
        chunk = step * (MAX_POINTS - 1)
        t = start
        while t <= end:
            stop = min(end, t + chunk)
            data = self.api("query_range", timeout=timeout, query=expr, start=t, end=stop, step=step)
            for series in data["result"]:
                key = tuple(sorted(series["metric"].items()))
                entry = out.setdefault(key, {"metric": series["metric"], "values": []})
                entry["values"].extend(series["values"])
            t = stop + step
        return list(out.values())

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
        status, raw = http("POST", self.url + "/-/reload")
        if status != 200:
            raise ServiceError(f"reload failed: HTTP {status} {raw[:300]!r}")


# --- promtool -----------------------------------------------------------------------------------------------


def promtool(args: list[str], what: str, timeout: float = 3600) -> str:
    """Run promtool; its stdout, or a ServiceError with the tail of its output."""
    proc = subprocess.run([require(PROMTOOL_BIN), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ServiceError(f"{what} failed (exit {proc.returncode}):\n{last}")
    return proc.stdout


def create_blocks_from_openmetrics(om_path: Path, data_dir: Path) -> None:
    """TSDB blocks in `data_dir` from an OpenMetrics file with timestamps."""
    data_dir.mkdir(parents=True, exist_ok=True)
    promtool(["tsdb", "create-blocks-from", "openmetrics", "--quiet", str(om_path), str(data_dir)],
             "promtool tsdb create-blocks-from openmetrics")


def create_blocks_from_rules(url: str, rule_paths: list[str], start_s: int, end_s: int, step_s: int,
                             out_dir: Path, what: str = "promtool tsdb create-blocks-from rules") -> None:
    """TSDB blocks in `out_dir` of the recording rules in `rule_paths`, evaluated by the Prometheus at `url`
    every `step_s` over [start_s, end_s]."""
    promtool(["tsdb", "create-blocks-from", "rules", "--quiet", f"--url={url}", f"--start={start_s}",
              f"--end={end_s}", f"--eval-interval={step_s}s", f"--output-dir={out_dir}", *rule_paths], what)


def move_blocks(src: Path, dest: Path) -> int:
    """Move the TSDB blocks of `src` into `dest` (a Prometheus loads them at its next start)."""
    moved = 0
    for block in src.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            shutil.move(str(block), str(dest / block.name))
            moved += 1
    return moved
