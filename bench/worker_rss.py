"""Worker memory against `slamon replay` of the same events (criterion: worker RSS within 1.5x of the replay's).

    nice -n 10 python bench/worker_rss.py [--file EVENTS.jsonl] [--contracts FILE] [--bootstrap HOST:PORT]

Input: --file (JSON Lines), else the real BPI Challenge 2013 log (../shared/datasets/bpic2013-volvo-incidents,
converted by monitor/importers/bpic2013.py, one client, examples/bpic2013-contracts.yaml), else 100k generated
events (bench/bench_events.py, examples/contracts.yaml). The file is written to a temp dir, removed at the end.

  replay   `slamon replay FILE --contracts C --format json --no-progress` as a child process: peak_rss_mb =
           its VmHWM from /proc/<pid>/status polled every 50 ms (the last read before exit; VmHWM is per address
           space, so it starts afresh at exec), last_rss_mb = VmRSS at that read; ru_maxrss_mb = ru_maxrss of that
           child (os.wait4), a check: Linux carries this process's RSS at fork into it, so it is an upper bound
           (hence the input is made in a child); seconds = wall time; empty_peak_rss_mb = peak_rss_mb of the same
           command on an empty file (interpreter + imports).
  worker   a broker of our own (unless --bootstrap), a fresh 4-partition topic, `python -m streams.app` (event
           clock, 5 s checkpoints); idle_rss_mb = its VmRSS once it owns the partitions (+5 s), before any event.
           Then the file's lines are produced keyed by client; seconds_to_apply = first send until /healthz shows
           every line applied (producing overlaps applying); /metrics must show slamon_events_received_total ==
           lines; after 2 checkpoint intervals of settling, rss_mb / peak_rss_mb = VmRSS / VmHWM of the worker
           process (not its forked scrape/snapshot children). checkpoint_bytes: slamon_checkpoint_size_bytes per
           partition; restore_records: slamon_restore_records_total.
  ratio    worker rss_mb / replay peak_rss_mb (the criterion), worker peak_rss_mb / replay peak_rss_mb, and
           state_growth = (worker rss_mb - idle_rss_mb) / (replay peak_rss_mb - empty_peak_rss_mb).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_kafka import PARTITIONS, bench_settings, broker_for  # noqa: E402

BPIC = ROOT.parent / "shared" / "datasets" / "bpic2013-volvo-incidents" / "VINST-new.csv"
CHECKPOINT_S = 5.0


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (empty once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return {k: int(v.split()[0]) / 1024 for k, v in (ln.split(":", 1) for ln in fh) if k in ("VmRSS", "VmHWM")}
    except OSError:
        return {}


def get_json(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return orjson.loads(resp.read())
    except (OSError, ValueError):
        return None


def metrics(port: int, timeout: float = 120) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        return [s for fam in text_string_to_metric_families(resp.read().decode()) for s in fam.samples]


def make_input(args, workdir: Path) -> tuple[Path, str]:
    """(events file, contracts); made in a child process, so this process stays small (see run_replay)."""
    if args.file:
        return Path(args.file), args.contracts or str(ROOT / "examples" / "contracts.yaml")
    path = workdir / "events.jsonl"
    if BPIC.exists():
        subprocess.run([str(ROOT / ".venv" / "bin" / "slamon"), "import", "bpic2013", str(BPIC), "-o", str(path)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return path, args.contracts or str(ROOT / "examples" / "bpic2013-contracts.yaml")
    contracts = args.contracts or str(ROOT / "examples" / "contracts.yaml")
    code = ("import sys; from bench_events import make_events; from monitor.contracts import load_contracts; "
            "open(sys.argv[2], 'wb').write(b''.join(x + b'\\n' for x in make_events(load_contracts(sys.argv[1]), "
            "100_000)))")
    subprocess.run([sys.executable, "-c", code, contracts, str(path)], cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"})
    return path, contracts


def run_replay(events: Path, contracts: str, workdir: Path) -> dict:
    cmd = [str(ROOT / ".venv" / "bin" / "slamon"), "replay", str(events), "--contracts", contracts,
           "--format", "json", "--no-progress"]
    started = time.perf_counter()
    with open(workdir / "replay.json", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out)
    last: dict[str, float] = {}
    while True:
        seen = status_mb(proc.pid)  # read before reaping: the last read is within 50 ms of the exit
        last = seen or last
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"slamon replay exited with {proc.returncode}")
    return {"peak_rss_mb": round(last.get("VmHWM", 0), 1), "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            "last_rss_mb": round(last.get("VmRSS", 0), 1), "seconds": round(seconds, 1),
            "output_bytes": (workdir / "replay.json").stat().st_size}


def run_worker(events: Path, contracts: str, bootstrap: str, workdir: Path, n: int) -> dict:
    from streams.producer import make_producer, produce
    from streams.topics import ensure_topics
    from tests.support.procs import free_port

    tag = uuid.uuid4().hex[:6]
    settings = bench_settings(bootstrap, f"rss-{tag}")
    ensure_topics(settings)
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")},
           "PYTHONPATH": str(ROOT), "SLAMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SLAMON_APP_ID": f"rss-{tag}",
           "SLAMON_TOPICS__EVENTS": settings.topics.events, "SLAMON_TOPICS__DEADLETTER": settings.topics.deadletter,
           "SLAMON_TOPICS__SLA_EVENTS": settings.topics.sla_events, "SLAMON_TOPICS__PARTITIONS": str(PARTITIONS),
           "SLAMON_CONTRACTS": contracts, "SLAMON_CLOCK": "event", "SLAMON_CHECKPOINT_INTERVAL": str(CHECKPOINT_S),
           "SLAMON_METRICS_BIND": f"127.0.0.1:{port}", "SLAMON_DATA_DIR": str(workdir / "worker-data"),
           "SLAMON_LOG_LEVEL": "info"}
    log_path = workdir / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 1800
        while (health := get_json(port, "/healthz")) is None or sorted(health["engines"]) != list(range(PARTITIONS)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker never owned its partitions:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        time.sleep(CHECKPOINT_S)
        idle = status_mb(proc.pid)["VmRSS"]
        started = time.perf_counter()
        producer = make_producer(settings, linger_ms=20)
        try:
            sent = produce(settings, events.read_bytes().splitlines(), producer=producer)
        finally:
            producer.close()
        if sent.sent != n or sent.failed:
            raise RuntimeError(f"produced {sent.sent} of {n} ({sent.failed} failed: {sent.errors[:3]})")
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not apply every line within 30 min")
            health = get_json(port, "/healthz")
            if health and sum(o + 1 for o in health["offsets"].values()) >= n:
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        while (received := sum(s.value for s in metrics(port) if s.name == "slamon_events_received_total")) < n:
            time.sleep(1)
        time.sleep(2 * CHECKPOINT_S + 1)
        mem = status_mb(proc.pid)
        samples = metrics(port)
        ckpt = {s.labels["partition"]: int(s.value) for s in samples if s.name == "slamon_checkpoint_size_bytes"}
        restore = [s.value for s in samples if s.name == "slamon_restore_records_total"]
        return {"rss_mb": round(mem["VmRSS"], 1), "peak_rss_mb": round(mem["VmHWM"], 1), "idle_rss_mb": round(idle, 1),
                "seconds_to_apply": round(seconds, 1), "metrics_received_total": received,
                "checkpoint_bytes": dict(sorted(ckpt.items())), "restore_records": restore[0] if restore else None}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def machine() -> dict:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "git_head": head.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", help="JSON Lines events (default: BPIC 2013 if present, else 100k generated)")
    ap.add_argument("--contracts", help="contracts YAML (default: the one matching the default input)")
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="slamon-worker-rss-"))
    broker = None
    try:
        events, contracts = make_input(args, workdir)
        with open(events, "rb") as fh:
            n = sum(1 for line in fh if line.strip())
        result: dict = {"file": str(events) if args.file else ("bpic2013" if BPIC.exists() else "generated"),
                        "contracts": contracts, "lines": n}
        result["replay"] = run_replay(events, contracts, workdir)
        (workdir / "empty.jsonl").write_bytes(b"")
        result["replay"]["empty_peak_rss_mb"] = run_replay(workdir / "empty.jsonl", contracts, workdir)["peak_rss_mb"]
        bootstrap, broker = broker_for(args.bootstrap, workdir)
        result["worker"] = run_worker(events, contracts, bootstrap, workdir, n)
        rep, wrk = result["replay"], result["worker"]
        result["ratio"] = {"worker_rss_to_replay_peak": round(wrk["rss_mb"] / rep["peak_rss_mb"], 2),
                           "worker_peak_to_replay_peak": round(wrk["peak_rss_mb"] / rep["peak_rss_mb"], 2),
                           "state_growth": round((wrk["rss_mb"] - wrk["idle_rss_mb"])
                                                 / (rep["peak_rss_mb"] - rep["empty_peak_rss_mb"]), 2)}
        result["machine"] = machine()
        print(json.dumps(result, indent=1))
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
